//! Template execution, following `text/template/exec.go`.
//!
//! Fields are looked up as keys of JSON objects. Error messages have Go's
//! shape: `template: :LINE:COL: executing "" at <NODE>: MESSAGE`, where the
//! node is the last one the executor visited, as in Go.

use serde_json::Value;

use crate::funcs::{self, Func, Ty};
use crate::parse::{Arg, Branch, Command, Node, Pipe, Tree};
use crate::value::{sorted_entries, Val};
use crate::{Error, MissingKey, Options};

/// Maximum depth of nested `{{template}}` calls. Go allows 100000; a lower
/// bound keeps Rust's stack safe and is only reached by runaway recursion.
const MAX_EXEC_DEPTH: usize = 200;

type R<T> = Result<T, Error>;

/// Control flow signal of `{{break}}` and `{{continue}}`.
#[derive(PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

/// The node being executed, for error messages.
#[derive(Clone, Copy)]
enum At<'t> {
    None,
    Node(&'t Node),
    Pipe(&'t Pipe),
    Cmd(&'t Command),
    Arg(&'t Arg),
    Template(&'t Node, usize),
}

pub(crate) struct Exec<'t, 'a> {
    tree: &'t Tree,
    opts: &'t Options,
    header: bool,
    root: Option<&'a Value>,
    vars: Vec<(String, Val<'a>)>,
    out: &'t mut String,
    at: At<'t>,
    depth: usize,
}

/// Executes `tree` with `data` as dot, appending to `out`. On error the
/// output produced so far stays in `out`, as with Go's writer.
pub(crate) fn execute<'t>(
    tree: &'t Tree,
    data: &'t Value,
    opts: &'t Options,
    header: bool,
    out: &'t mut String,
) -> R<()> {
    let dot = Val::from_json(data);
    let mut ex = Exec {
        tree,
        opts,
        header,
        root: Some(data),
        vars: vec![("$".to_string(), dot.clone())],
        out,
        at: At::None,
        depth: 0,
    };
    ex.walk_list(&dot, &tree.root).map(|_| ())
}

fn is_struct_like(o: &serde_json::Map<String, Value>) -> bool {
    !o.is_empty() && o.keys().all(|k| k.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
}

impl<'t, 'a> Exec<'t, 'a> {
    fn errorf(&self, msg: impl Into<String>) -> Error {
        let (pos, context) = match self.at {
            At::None => return Error::Exec { line: 0, col: 0, context: String::new(), msg: msg.into() },
            At::Node(n) => (node_pos(n), n.to_string()),
            At::Pipe(p) => (p.pos, p.to_string()),
            At::Cmd(c) => (c.pos, c.to_string()),
            At::Arg(a) => (a.pos(), a.to_string()),
            At::Template(n, pos) => (pos, n.to_string()),
        };
        let text = &self.tree.text[..pos.min(self.tree.text.len())];
        let (line, col) = match text.rfind('\n') {
            Some(i) => (1 + text.matches('\n').count(), pos - (i + 1)),
            None => (1, pos),
        };
        Error::Exec { line, col, context, msg: msg.into() }
    }

    fn mark(&self) -> usize {
        self.vars.len()
    }

    fn pop(&mut self, mark: usize) {
        self.vars.truncate(mark);
    }

    fn var_value(&self, name: &str) -> R<Val<'a>> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(self.errorf(format!("undefined variable: {name}"))),
        }
    }

    fn set_var(&mut self, name: &str, value: Val<'a>) -> R<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => Err(self.errorf(format!("undefined variable: {name}"))),
        }
    }

    fn set_top_var(&mut self, n: usize, value: Val<'a>) {
        let len = self.vars.len();
        if let Some(slot) = self.vars.get_mut(len.wrapping_sub(n)) {
            slot.1 = value;
        }
    }

    fn walk_list(&mut self, dot: &Val<'a>, list: &'t [Node]) -> R<Flow> {
        for n in list {
            let flow = self.walk(dot, n)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Val<'a>, node: &'t Node) -> R<Flow> {
        self.at = At::Node(node);
        match node {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(a) => {
                // Variables declared by the action persist until the end of
                // the enclosing control structure; declarations print nothing.
                let val = self.eval_pipeline(dot, &a.pipe)?;
                if a.pipe.decl.is_empty() {
                    self.at = At::Node(node);
                    val.write_go(self.out);
                }
            }
            Node::If(b) => return self.walk_if_or_with(dot, b, false),
            Node::With(b) => return self.walk_if_or_with(dot, b, true),
            Node::Range(b) => return self.walk_range(dot, node, b),
            Node::Template(t) => {
                let Some(body) = self.tree.defs.get(&t.name) else {
                    self.at = At::Template(node, t.pos);
                    return Err(self.errorf(format!("template {} not defined", crate::printf::go_quote(&t.name))));
                };
                if self.depth >= MAX_EXEC_DEPTH {
                    self.at = At::Template(node, t.pos);
                    return Err(self.errorf(format!("exceeded maximum template depth ({MAX_EXEC_DEPTH})")));
                }
                let new_dot = match &t.pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Val::Missing,
                };
                // No dynamic scoping: template invocations inherit no variables.
                let saved = std::mem::replace(&mut self.vars, vec![("$".to_string(), new_dot.clone())]);
                self.depth += 1;
                let res = self.walk_list(&new_dot, body);
                self.depth -= 1;
                self.vars = saved;
                res?;
            }
            Node::Break(_) => return Ok(Flow::Break),
            Node::Continue(_) => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_if_or_with(&mut self, dot: &Val<'a>, b: &'t Branch, with: bool) -> R<Flow> {
        let mark = self.mark();
        let res = (|| {
            let val = self.eval_pipeline(dot, &b.pipe)?;
            if val.truth() {
                if with {
                    self.walk_list(&val, &b.list)
                } else {
                    self.walk_list(dot, &b.list)
                }
            } else if let Some(e) = &b.else_list {
                self.walk_list(dot, e)
            } else {
                Ok(Flow::Normal)
            }
        })();
        self.pop(mark);
        res
    }

    fn walk_range(&mut self, dot: &Val<'a>, node: &'t Node, b: &'t Branch) -> R<Flow> {
        self.at = At::Node(node);
        let outer = self.mark();
        let res = self.walk_range_inner(dot, b);
        self.pop(outer);
        res
    }

    fn one_iteration(&mut self, b: &'t Branch, mark: usize, index: Val<'a>, elem: Val<'a>) -> R<Flow> {
        let decl = &b.pipe.decl;
        if !decl.is_empty() {
            if b.pipe.is_assign {
                // With two variables the index comes first.
                if decl.len() > 1 {
                    self.set_var(&decl[0], index.clone())?;
                } else {
                    self.set_var(&decl[0], elem.clone())?;
                }
            } else {
                self.set_top_var(1, elem.clone());
            }
        }
        if decl.len() > 1 {
            if b.pipe.is_assign {
                self.set_var(&decl[1], elem.clone())?;
            } else {
                self.set_top_var(2, index);
            }
        }
        let res = self.walk_list(&elem, &b.list);
        self.pop(mark);
        res
    }

    fn walk_range_inner(&mut self, dot: &Val<'a>, b: &'t Branch) -> R<Flow> {
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let mark = self.mark();
        let mut iterated = false;
        macro_rules! iterate {
            ($idx:expr, $elem:expr) => {{
                iterated = true;
                match self.one_iteration(b, mark, $idx, $elem)? {
                    Flow::Break => break,
                    Flow::Continue | Flow::Normal => {}
                }
            }};
        }
        match &val {
            Val::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    iterate!(Val::Int(i as i64), Val::from_json(v));
                }
            }
            Val::Strings(s) => {
                for (i, v) in s.iter().enumerate() {
                    iterate!(Val::Int(i as i64), Val::str(v.clone()));
                }
            }
            Val::Object(o) => {
                // Go ranges over maps in sorted key order.
                for (k, v) in sorted_entries(o) {
                    iterate!(Val::str(k.clone()), Val::from_json(v));
                }
            }
            Val::Int(_) | Val::Uint(_) | Val::Byte(_) => {
                // Go 1.22: range over an integer.
                if b.pipe.decl.len() > 1 {
                    return Err(
                        self.errorf(format!("can't use {} to iterate over more than one variable", val.to_go_string()))
                    );
                }
                let n = val.as_index().unwrap_or(0);
                for i in 0..n.max(0) {
                    iterate!(Val::Int(i), Val::Int(i));
                }
            }
            Val::Missing | Val::Nil => {}
            other => return Err(self.errorf(format!("range can't iterate over {}", other.to_go_string()))),
        }
        if !iterated {
            if let Some(e) = &b.else_list {
                return self.walk_list(dot, e);
            }
        }
        Ok(Flow::Normal)
    }

    fn eval_pipeline(&mut self, dot: &Val<'a>, pipe: &'t Pipe) -> R<Val<'a>> {
        self.at = At::Pipe(pipe);
        let mut value: Option<Val<'a>> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Val::Missing);
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, value.clone())?;
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &[Arg], fin: &Option<Val<'a>>) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            let first = args.first().map(ToString::to_string).unwrap_or_default();
            return Err(self.errorf(format!("can't give argument to non-function {first}")));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Val<'a>, cmd: &'t Command, fin: Option<Val<'a>>) -> R<Val<'a>> {
        let Some(first) = cmd.args.first() else {
            return Err(self.errorf("empty command"));
        };
        match first {
            Arg::Field { ident, .. } => {
                self.at = At::Arg(first);
                return self.eval_field_chain(dot, dot.clone(), first, ident, &cmd.args, fin);
            }
            Arg::Chain { node, fields, .. } => {
                self.at = At::Arg(first);
                if let Arg::Nil(_) = node.as_ref() {
                    return Err(self.errorf(format!("indirection through explicit nil in {first}")));
                }
                let recv = self.eval_arg(dot, Ty::Value, node)?;
                return self.eval_field_chain(dot, recv, first, fields, &cmd.args, fin);
            }
            Arg::Identifier { name, .. } => {
                self.at = At::Arg(first);
                return self.eval_function(dot, name, first, At::Cmd(cmd), &cmd.args, fin);
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, &fin)?;
                return self.eval_pipeline(dot, p);
            }
            Arg::Variable { ident, .. } => {
                self.at = At::Arg(first);
                return self.eval_variable(dot, first, ident, &cmd.args, fin);
            }
            _ => {}
        }
        self.at = At::Arg(first);
        self.not_a_function(&cmd.args, &fin)?;
        match first {
            Arg::Bool(_, b) => Ok(Val::Bool(*b)),
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Nil(_) => Err(self.errorf("nil is not a command")),
            Arg::Number(_, n) => self.ideal_constant(n),
            Arg::Str { text, .. } => Ok(Val::str(text.clone())),
            _ => Err(self.errorf(format!("can't evaluate command {first}"))),
        }
    }

    /// A number whose type is not known from context: the syntax decides,
    /// as Go's `idealConstant`.
    fn ideal_constant(&self, n: &crate::parse::Number) -> R<Val<'a>> {
        let t = &n.text;
        let lower = t.to_ascii_lowercase();
        let is_hex_int = lower.trim_start_matches(['+', '-']).starts_with("0x") && !lower.contains('p');
        let is_rune = t.starts_with('\'');
        if n.float.is_some() && !is_hex_int && !is_rune && t.contains(['.', 'e', 'E', 'p', 'P']) {
            return Ok(Val::Float(n.float.unwrap_or(0.0)));
        }
        if let Some(i) = n.int {
            return Ok(Val::Int(i));
        }
        if n.uint.is_some() {
            return Err(self.errorf(format!("{t} overflows int")));
        }
        Ok(Val::Missing)
    }

    fn eval_variable(
        &mut self,
        dot: &Val<'a>,
        node: &'t Arg,
        ident: &'t [String],
        args: &'t [Arg],
        fin: Option<Val<'a>>,
    ) -> R<Val<'a>> {
        let name = ident.first().map(String::as_str).unwrap_or("$");
        let value = self.var_value(name)?;
        if ident.len() == 1 {
            self.not_a_function(args, &fin)?;
            return Ok(value);
        }
        self.eval_field_chain(dot, value, node, &ident[1..], args, fin)
    }

    fn eval_field_chain(
        &mut self,
        dot: &Val<'a>,
        mut recv: Val<'a>,
        node: &'t Arg,
        ident: &'t [String],
        args: &'t [Arg],
        fin: Option<Val<'a>>,
    ) -> R<Val<'a>> {
        let n = ident.len();
        for name in &ident[..n.saturating_sub(1)] {
            recv = self.eval_field(dot, name, node, &[], None, recv)?;
        }
        match ident.last() {
            Some(last) => self.eval_field(dot, last, node, args, fin, recv),
            None => Ok(recv),
        }
    }

    /// Evaluates `.Field` (possibly with arguments) on `recv`.
    fn eval_field(
        &mut self,
        dot: &Val<'a>,
        name: &str,
        node: &'t Arg,
        args: &'t [Arg],
        fin: Option<Val<'a>>,
        recv: Val<'a>,
    ) -> R<Val<'a>> {
        // Like Go's evalField, this does not move the error position: it
        // stays on the node the caller last visited.
        let has_args = args.len() > 1 || fin.is_some();
        match recv {
            Val::Missing => {
                if self.opts.missing_key == MissingKey::Error {
                    return Err(self.errorf(format!("nil data; no entry for key {}", crate::printf::go_quote(name))));
                }
                Ok(Val::Missing)
            }
            Val::Nil => Err(self.errorf(format!("nil pointer evaluating interface {{}}.{name}"))),
            Val::Object(o) => {
                if has_args {
                    // A docker formatter context has methods taking an
                    // argument, such as `.Label "key"`. An object-valued
                    // field called with one argument looks the key up in it;
                    // a missing key gives "" like those methods.
                    if let Some(Value::Object(m)) = o.get(name) {
                        let mut call_args = Vec::new();
                        for a in &args[1..] {
                            call_args.push(self.eval_arg(dot, Ty::Str, a)?);
                        }
                        if let Some(f) = fin {
                            call_args.push(self.validate_type(f, Ty::Str)?);
                        }
                        if let [Val::Str(key)] = call_args.as_slice() {
                            return Ok(m.get(key.as_ref()).map_or(Val::str(""), Val::from_json));
                        }
                        self.at = At::Arg(node);
                        return Err(
                            self.errorf(format!("wrong number of args for {name}: want 1 got {}", call_args.len()))
                        );
                    }
                    return Err(self.errorf(format!("{name} is not a method but has arguments")));
                }
                if let Some(v) = o.get(name) {
                    return Ok(Val::from_json(v));
                }
                let is_root = self.root.is_some_and(|r| matches!(r, Value::Object(ro) if std::ptr::eq(ro, o)));
                let error = match self.opts.missing_key {
                    MissingKey::NoValue => false,
                    MissingKey::Error => true,
                    MissingKey::Auto => is_root || is_struct_like(o),
                };
                if !error || self.header {
                    return Ok(Val::Missing);
                }
                match (&self.opts.root_type, is_root) {
                    (Some(t), true) => Err(self.errorf(format!("can't evaluate field {name} in type {t}"))),
                    _ => Err(self.errorf(format!("map has no entry for key {}", crate::printf::go_quote(name)))),
                }
            }
            other => Err(self.errorf(format!("can't evaluate field {name} in type {}", other.type_name()))),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Val<'a>,
        name: &str,
        node: &'t Arg,
        call_at: At<'t>,
        args: &'t [Arg],
        fin: Option<Val<'a>>,
    ) -> R<Val<'a>> {
        self.at = At::Arg(node);
        let Some(func) = Func::lookup(name) else {
            return Err(self.errorf(format!("{} is not a defined function", crate::printf::go_quote(name))));
        };
        let sig = func.sig(self.header);
        // The zeroth argument is the function name itself.
        let args = args.get(1..).unwrap_or_default();
        let num_in = args.len() + usize::from(fin.is_some());
        let num_fixed = if sig.variadic.is_some() {
            let fixed = sig.fixed.len();
            if num_in < fixed {
                return Err(
                    self.errorf(format!("wrong number of args for {name}: want at least {fixed} got {}", args.len()))
                );
            }
            fixed
        } else {
            if num_in != sig.fixed.len() {
                return Err(
                    self.errorf(format!("wrong number of args for {name}: want {} got {num_in}", sig.fixed.len()))
                );
            }
            args.len()
        };
        // Special case for the builtin and/or, which short-circuit.
        if func == Func::And || func == Func::Or {
            let mut v = Val::Missing;
            for a in args {
                v = self.eval_arg(dot, Ty::Value, a)?;
                if v.truth() == (func == Func::Or) {
                    return Ok(v);
                }
            }
            if let Some(f) = fin {
                v = f;
            }
            return Ok(v);
        }
        let mut argv = Vec::with_capacity(num_in);
        let mut i = 0;
        while i < num_fixed && i < args.len() {
            argv.push(self.eval_arg(dot, sig.fixed[i], &args[i])?);
            i += 1;
        }
        if let Some(vt) = sig.variadic {
            while i < args.len() {
                argv.push(self.eval_arg(dot, vt, &args[i])?);
                i += 1;
            }
        }
        if let Some(f) = fin {
            let t = if num_in - 1 < sig.fixed.len() { sig.fixed[num_in - 1] } else { sig.variadic.unwrap_or(Ty::Any) };
            argv.push(self.validate_type(f, t)?);
        }
        if func == Func::Json && !self.header && self.opts.escape_html_in_row_json {
            // docker's list contexts implement MarshalJSON by marshalling a
            // map of their fields with json.Marshal (formatter/reflect.go),
            // so `{{json .}}` on a row has its keys sorted and is
            // HTML-escaped although the `json` function itself does not
            // escape.
            if let (Some(Val::Object(o)), Some(Value::Object(root))) = (argv.first(), self.root) {
                if std::ptr::eq(*o, root) {
                    return Ok(Val::str(crate::json::row_json(o)));
                }
            }
        }
        let callee = args.first().map(ToString::to_string).unwrap_or_default();
        match funcs::call(func, argv, self.header, &callee) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.at = call_at;
                Err(self.errorf(format!("error calling {name}: {e}")))
            }
        }
    }

    /// Go's `validateType`: checks a computed value against a parameter type.
    fn validate_type(&self, v: Val<'a>, ty: Ty) -> R<Val<'a>> {
        let ok = match (&v, ty) {
            (Val::Missing, Ty::Any) => return Ok(Val::Nil),
            (_, Ty::Any | Ty::Value) => true,
            (Val::Missing, Ty::StrSlice) => return Ok(Val::Nil),
            (Val::Missing, _) => return Err(self.errorf(format!("invalid value; expected {}", ty.go_name()))),
            (Val::Str(_), Ty::Str) => true,
            (Val::Int(_), Ty::Int) => true,
            (Val::Strings(_), Ty::StrSlice) => true,
            (Val::Array(a), Ty::StrSlice) => a.iter().all(Value::is_string),
            _ => false,
        };
        if !ok {
            return Err(self.errorf(format!("wrong type for value; expected {}; got {}", ty.go_name(), v.type_name())));
        }
        Ok(v)
    }

    /// Go's `evalArg`: evaluates an argument for a parameter of type `ty`.
    fn eval_arg(&mut self, dot: &Val<'a>, ty: Ty, n: &'t Arg) -> R<Val<'a>> {
        self.at = At::Arg(n);
        let v = match n {
            Arg::Dot(_) => dot.clone(),
            Arg::Nil(_) => {
                return match ty {
                    Ty::Any | Ty::Value | Ty::StrSlice => Ok(Val::Nil),
                    _ => Err(self.errorf(format!("cannot assign nil to {}", ty.go_name()))),
                }
            }
            Arg::Field { ident, .. } => {
                let one = std::slice::from_ref(n);
                self.eval_field_chain(dot, dot.clone(), n, ident, one, None)?
            }
            Arg::Variable { ident, .. } => self.eval_variable(dot, n, ident, &[], None)?,
            Arg::Pipe(p) => self.eval_pipeline(dot, p)?,
            Arg::Identifier { name, .. } => {
                // A bare function name as an argument is a call without
                // arguments.
                self.eval_function(dot, name, n, At::Arg(n), &[], None)?
            }
            Arg::Chain { node, fields, .. } => {
                if let Arg::Nil(_) = node.as_ref() {
                    return Err(self.errorf(format!("indirection through explicit nil in {n}")));
                }
                let recv = self.eval_arg(dot, Ty::Value, node)?;
                self.eval_field_chain(dot, recv, n, fields, &[], None)?
            }
            Arg::Bool(_, b) => {
                return match ty {
                    Ty::Any | Ty::Value => Ok(Val::Bool(*b)),
                    Ty::Str => Err(self.errorf(format!("expected string; found {n}"))),
                    Ty::Int => Err(self.errorf(format!("expected integer; found {n}"))),
                    Ty::StrSlice => Err(self.errorf(format!("can't handle {n} for arg of type []string"))),
                }
            }
            Arg::Number(_, num) => {
                return match ty {
                    Ty::Any | Ty::Value => self.ideal_constant(num),
                    Ty::Int => match num.int {
                        Some(i) => Ok(Val::Int(i)),
                        None => Err(self.errorf(format!("expected integer; found {n}"))),
                    },
                    Ty::Str => Err(self.errorf(format!("expected string; found {n}"))),
                    Ty::StrSlice => Err(self.errorf(format!("can't handle {n} for arg of type []string"))),
                }
            }
            Arg::Str { text, .. } => {
                return match ty {
                    Ty::Any | Ty::Value | Ty::Str => Ok(Val::str(text.clone())),
                    Ty::Int => Err(self.errorf(format!("expected integer; found {n}"))),
                    Ty::StrSlice => Err(self.errorf(format!("can't handle {n} for arg of type []string"))),
                }
            }
        };
        self.at = At::Arg(n);
        self.validate_type(v, ty)
    }
}

fn node_pos(n: &Node) -> usize {
    match n {
        Node::Text(_) => 0,
        Node::Action(a) => a.pos,
        Node::If(b) | Node::Range(b) | Node::With(b) => b.pipe.pos,
        Node::Template(t) => t.pos,
        Node::Break(p) | Node::Continue(p) => *p,
    }
}
