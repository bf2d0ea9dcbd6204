//! Parser for the Go `text/template` language, following
//! `text/template/parse/parse.go`: the same grammar, the same checks done at
//! parse time (undefined functions and variables, `{{break}}` outside
//! `{{range}}`, non-executable pipeline stages) and the same error texts.

use std::collections::HashMap;
use std::fmt;

use crate::lex::{lex, Item, ItemKind};
use crate::Error;

/// Maximum nesting of parenthesised pipelines and control structures,
/// like Go's `maxStackDepth`, to keep recursion bounded.
const MAX_DEPTH: usize = 100;

/// A parsed template: the main list plus the templates named by `define`
/// and `block`.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    pub root: Vec<Node>,
    pub defs: HashMap<String, Vec<Node>>,
    pub text: String,
}

/// An element of a template list.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Action),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template(TemplateCall),
    Break(usize),
    Continue(usize),
}

#[derive(Debug, Clone)]
pub(crate) struct Action {
    pub pos: usize,
    pub pipe: Pipe,
}

/// `if`, `range` and `with`.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub(crate) struct TemplateCall {
    pub pos: usize,
    pub name: String,
    pub pipe: Option<Pipe>,
}

/// A pipeline with optional variable declarations.
#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<String>,
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

/// A parsed numeric constant with every interpretation that fits, as Go's
/// `NumberNode`.
#[derive(Debug, Clone)]
pub(crate) struct Number {
    pub text: String,
    pub int: Option<i64>,
    pub uint: Option<u64>,
    pub float: Option<f64>,
}

/// An operand.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Field { pos: usize, ident: Vec<String> },
    Chain { pos: usize, node: Box<Arg>, fields: Vec<String> },
    Variable { pos: usize, ident: Vec<String> },
    Identifier { pos: usize, name: String },
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    Number(usize, Number),
    Str { pos: usize, quoted: String, text: String },
    Pipe(Box<Pipe>),
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Identifier { pos, .. }
            | Arg::Dot(pos)
            | Arg::Nil(pos)
            | Arg::Bool(pos, _)
            | Arg::Number(pos, _)
            | Arg::Str { pos, .. } => *pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

// String forms, as Go's Node.String(), used in error contexts.

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { ident, .. } => {
                for i in ident {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Chain { node, fields, .. } => {
                if let Arg::Pipe(_) = node.as_ref() {
                    write!(f, "({node})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for i in fields {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Variable { ident, .. } => f.write_str(&ident.join(".")),
            Arg::Identifier { name, .. } => f.write_str(name),
            Arg::Dot(_) => f.write_str("."),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number(_, n) => f.write_str(&n.text),
            Arg::Str { quoted, .. } => f.write_str(quoted),
            Arg::Pipe(p) => write!(f, "{p}"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if let Arg::Pipe(p) = a {
                write!(f, "({p})")?;
            } else {
                write!(f, "{a}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            // Go's PipeNode.String writes ":=" for assignments too.
            f.write_str(&self.decl.join(", "))?;
            f.write_str(" := ")?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, list: &[Node]) -> fmt::Result {
    for n in list {
        write!(f, "{n}")?;
    }
    Ok(())
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let branch = |f: &mut fmt::Formatter<'_>, name: &str, b: &Branch| -> fmt::Result {
            write!(f, "{{{{{name} {}}}}}", b.pipe)?;
            write_list(f, &b.list)?;
            if let Some(e) = &b.else_list {
                f.write_str("{{else}}")?;
                write_list(f, e)?;
            }
            f.write_str("{{end}}")
        };
        match self {
            Node::Text(t) => f.write_str(t),
            Node::Action(a) => write!(f, "{{{{{}}}}}", a.pipe),
            Node::If(b) => branch(f, "if", b),
            Node::Range(b) => branch(f, "range", b),
            Node::With(b) => branch(f, "with", b),
            Node::Template(t) => match &t.pipe {
                Some(p) => write!(f, "{{{{template {} {p}}}}}", crate::printf::go_quote(&t.name)),
                None => write!(f, "{{{{template {}}}}}", crate::printf::go_quote(&t.name)),
            },
            Node::Break(_) => f.write_str("{{break}}"),
            Node::Continue(_) => f.write_str("{{continue}}"),
        }
    }
}

/// What ended an item list.
enum End {
    End,
    Else,
}

struct Parser<'f> {
    items: Vec<Item>,
    idx: usize,
    /// Line of the most recently consumed token, for error messages.
    line: usize,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    defs: HashMap<String, Vec<Node>>,
    has_func: &'f dyn Fn(&str) -> bool,
}

type PResult<T> = Result<T, Error>;

/// Pipeline, body and optional else branch of a control structure.
type ControlParts = (Pipe, Vec<Node>, Option<Vec<Node>>);

/// Parses `text`; `has_func` tells which function names are defined.
pub(crate) fn parse(text: &str, has_func: &dyn Fn(&str) -> bool) -> PResult<Tree> {
    let mut p = Parser {
        items: lex(text),
        idx: 0,
        line: 1,
        vars: vec!["$".into()],
        range_depth: 0,
        depth: 0,
        defs: HashMap::new(),
        has_func,
    };
    let root = p.parse_root()?;
    Ok(Tree { root, defs: p.defs, text: text.to_string() })
}

impl Parser<'_> {
    fn errorf(&self, msg: impl Into<String>) -> Error {
        Error::Parse { line: self.line, msg: msg.into() }
    }

    fn next(&mut self) -> Item {
        let it = match self.items.get(self.idx) {
            Some(it) => it.clone(),
            None => {
                self.items.last().cloned().unwrap_or(Item { kind: ItemKind::Eof, pos: 0, line: 1, val: String::new() })
            }
        };
        if self.idx < self.items.len() {
            self.idx += 1;
        }
        self.line = it.line;
        it
    }

    fn backup(&mut self) {
        self.idx = self.idx.saturating_sub(1);
    }

    fn peek(&mut self) -> Item {
        let it = self.next();
        self.backup();
        it
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let it = self.next();
            if it.kind != ItemKind::Space {
                return it;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let it = self.next_non_space();
        self.backup();
        it
    }

    /// Consumes the next item, which must be of the given kind.
    fn expect(&mut self, kind: ItemKind, context: &str) -> PResult<Item> {
        let it = self.next_non_space();
        if it.kind != kind {
            return Err(self.unexpected(&it, context));
        }
        Ok(it)
    }

    fn unexpected(&self, it: &Item, context: &str) -> Error {
        if it.kind == ItemKind::Error {
            return self.errorf(it.val.clone());
        }
        self.errorf(format!("unexpected {it} in {context}"))
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.errorf("max expression depth exceeded"));
        }
        Ok(())
    }

    fn parse_root(&mut self) -> PResult<Vec<Node>> {
        let mut root = Vec::new();
        loop {
            let it = self.peek();
            if it.kind == ItemKind::Eof {
                break;
            }
            if it.kind == ItemKind::LeftDelim {
                let save = self.idx;
                self.next();
                if self.next_non_space().kind == ItemKind::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.idx = save;
            }
            match self.text_or_action()? {
                Elem::Node(n) => root.push(n),
                Elem::End => return Err(self.errorf("unexpected {{end}}")),
                Elem::Else => return Err(self.errorf("unexpected {{else}}")),
            }
        }
        Ok(root)
    }

    fn parse_definition(&mut self) -> PResult<()> {
        const CONTEXT: &str = "define clause";
        let it = self.next_non_space();
        if it.kind != ItemKind::String && it.kind != ItemKind::RawString {
            return Err(self.unexpected(&it, CONTEXT));
        }
        let name = self.unquote(&it.val)?;
        self.expect(ItemKind::RightDelim, CONTEXT)?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (list, end) = self.item_list()?;
        self.vars = saved;
        if let End::Else = end {
            return Err(self.errorf(format!("unexpected {{{{else}}}} in {CONTEXT}")));
        }
        self.add_def(name, list);
        Ok(())
    }

    /// Go keeps an existing definition when the new one is empty.
    fn add_def(&mut self, name: String, list: Vec<Node>) {
        let empty = list.iter().all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()));
        if empty && self.defs.contains_key(&name) {
            return;
        }
        self.defs.insert(name, list);
    }

    /// Parses nodes up to `{{end}}` or `{{else}}`.
    fn item_list(&mut self) -> PResult<(Vec<Node>, End)> {
        let mut list = Vec::new();
        while self.peek_non_space().kind != ItemKind::Eof {
            match self.text_or_action()? {
                Elem::Node(n) => list.push(n),
                Elem::End => return Ok((list, End::End)),
                Elem::Else => return Ok((list, End::Else)),
            }
        }
        let eof = self.peek_non_space();
        if let ItemKind::Error = eof.kind {
            self.next();
            return Err(self.errorf(eof.val));
        }
        Err(self.errorf("unexpected EOF"))
    }

    fn text_or_action(&mut self) -> PResult<Elem> {
        let it = self.next_non_space();
        match it.kind {
            ItemKind::Text => Ok(Elem::Node(Node::Text(it.val))),
            ItemKind::LeftDelim => self.action(),
            _ => Err(self.unexpected(&it, "input")),
        }
    }

    fn action(&mut self) -> PResult<Elem> {
        let it = self.next_non_space();
        match it.kind {
            ItemKind::Block => return self.block_control().map(Elem::Node),
            ItemKind::Break => return self.loop_control(it.pos, "break").map(Elem::Node),
            ItemKind::Continue => return self.loop_control(it.pos, "continue").map(Elem::Node),
            ItemKind::Else => return self.else_control(),
            ItemKind::End => {
                self.expect(ItemKind::RightDelim, "end")?;
                return Ok(Elem::End);
            }
            ItemKind::If => return self.branch_control("if").map(Elem::Node),
            ItemKind::Range => return self.branch_control("range").map(Elem::Node),
            ItemKind::Template => return self.template_control().map(Elem::Node),
            ItemKind::With => return self.branch_control("with").map(Elem::Node),
            ItemKind::Define => {
                return Err(self.errorf("unexpected <define> in command"));
            }
            _ => {}
        }
        self.backup();
        let pos = self.peek().pos;
        let pipe = self.pipeline("command", ItemKind::RightDelim)?;
        Ok(Elem::Node(Node::Action(Action { pos, pipe })))
    }

    fn loop_control(&mut self, pos: usize, name: &str) -> PResult<Node> {
        let it = self.next_non_space();
        if it.kind != ItemKind::RightDelim {
            return Err(self.unexpected(&it, &format!("{{{{{name}}}}}")));
        }
        if self.range_depth == 0 {
            return Err(self.errorf(format!("{{{{{name}}}}} outside {{{{range}}}}")));
        }
        Ok(if name == "break" { Node::Break(pos) } else { Node::Continue(pos) })
    }

    fn else_control(&mut self) -> PResult<Elem> {
        let peek = self.peek_non_space();
        // "{{else if ..." and "{{else with ..." are treated as
        // "{{else}}{{if ..." and "{{else}}{{with ...".
        if peek.kind == ItemKind::If || peek.kind == ItemKind::With {
            return Ok(Elem::Else);
        }
        self.expect(ItemKind::RightDelim, "else")?;
        Ok(Elem::Else)
    }

    fn branch_control(&mut self, context: &str) -> PResult<Node> {
        self.enter()?;
        let mark = self.vars.len();
        let result = self.parse_control(context);
        self.vars.truncate(mark);
        self.depth -= 1;
        let (pipe, list, else_list) = result?;
        let b = Branch { pipe, list, else_list };
        Ok(match context {
            "if" => Node::If(b),
            "range" => Node::Range(b),
            _ => Node::With(b),
        })
    }

    fn parse_control(&mut self, context: &str) -> PResult<ControlParts> {
        let pipe = self.pipeline(context, ItemKind::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let res = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, end) = res?;
        let mut else_list = None;
        if let End::Else = end {
            // Special case for "else if" and "else with": parse the "if"
            // or "with" and stop at its {{end}}; the enclosing {{end}} is
            // assumed.
            let peek = self.peek().kind;
            if context == "if" && peek == ItemKind::If {
                self.next();
                else_list = Some(vec![self.branch_control("if")?]);
            } else if context == "with" && peek == ItemKind::With {
                self.next();
                else_list = Some(vec![self.branch_control("with")?]);
            } else {
                let (l, end) = self.item_list()?;
                if let End::Else = end {
                    return Err(self.errorf("expected end; found {{else}}"));
                }
                else_list = Some(l);
            }
        }
        Ok((pipe, list, else_list))
    }

    fn template_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "template clause";
        let it = self.next_non_space();
        let name = self.template_name(&it, CONTEXT)?;
        let pipe = if self.next_non_space().kind != ItemKind::RightDelim {
            self.backup();
            Some(self.pipeline(CONTEXT, ItemKind::RightDelim)?)
        } else {
            None
        };
        Ok(Node::Template(TemplateCall { pos: it.pos, name, pipe }))
    }

    /// `{{block "name" pipeline}} T1 {{end}}` is shorthand for defining the
    /// template and then executing it in place.
    fn block_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "block clause";
        let it = self.next_non_space();
        let name = self.template_name(&it, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, ItemKind::RightDelim)?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
        self.enter()?;
        let res = self.item_list();
        self.depth -= 1;
        self.vars = saved;
        let (list, end) = res?;
        if let End::Else = end {
            return Err(self.errorf(format!("unexpected {{{{else}}}} in {CONTEXT}")));
        }
        self.add_def(name.clone(), list);
        Ok(Node::Template(TemplateCall { pos: it.pos, name, pipe: Some(pipe) }))
    }

    fn template_name(&mut self, it: &Item, context: &str) -> PResult<String> {
        match it.kind {
            ItemKind::String | ItemKind::RawString => self.unquote(&it.val),
            _ => Err(self.unexpected(it, context)),
        }
    }

    fn unquote(&self, quoted: &str) -> PResult<String> {
        crate::printf::go_unquote(quoted).ok_or_else(|| self.errorf("invalid syntax"))
    }

    /// declarations? command ('|' command)*
    fn pipeline(&mut self, context: &str, end: ItemKind) -> PResult<Pipe> {
        let start = self.peek_non_space();
        let mut pipe = Pipe { pos: start.pos, is_assign: false, decl: Vec::new(), cmds: Vec::new() };
        'decls: loop {
            let v = self.peek_non_space();
            if v.kind != ItemKind::Variable {
                break;
            }
            let save = self.idx;
            self.next_non_space();
            // Since space is a token, "$x foo" needs a look-ahead past the
            // space to tell an argument from a declaration.
            let next = self.peek_non_space();
            match next.kind {
                ItemKind::Assign | ItemKind::Declare => {
                    pipe.is_assign = next.kind == ItemKind::Assign;
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val.clone());
                }
                ItemKind::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val.clone());
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().kind {
                            ItemKind::Variable | ItemKind::RightDelim | ItemKind::RightParen => {
                                continue 'decls;
                            }
                            _ => return Err(self.errorf("range can only initialize variables")),
                        }
                    }
                    return Err(self.errorf(format!("too many declarations in {context}")));
                }
                _ => self.idx = save,
            }
            break;
        }
        loop {
            let it = self.next_non_space();
            if it.kind == end {
                self.check_pipeline(&pipe, context)?;
                return Ok(pipe);
            }
            match it.kind {
                ItemKind::Bool
                | ItemKind::CharConstant
                | ItemKind::Complex
                | ItemKind::Dot
                | ItemKind::Field
                | ItemKind::Identifier
                | ItemKind::Number
                | ItemKind::Nil
                | ItemKind::RawString
                | ItemKind::String
                | ItemKind::Variable
                | ItemKind::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(&it, context)),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return Err(self.errorf(format!("missing value for {context}")));
        }
        // Only the first command of a pipeline can start with a
        // non-executable operand.
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if let Some(Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number(..) | Arg::Str { .. }) = c.args.first()
            {
                return Err(self.errorf(format!("non executable command in pipeline stage {}", i + 1)));
            }
        }
        Ok(())
    }

    /// operand (space operand)*
    fn command(&mut self) -> PResult<Command> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Command { pos, args: Vec::new() };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let it = self.next();
            match it.kind {
                ItemKind::Space => continue,
                ItemKind::RightDelim | ItemKind::RightParen => self.backup(),
                ItemKind::Pipe => {}
                _ => return Err(self.unexpected(&it, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.errorf("empty command"));
        }
        Ok(cmd)
    }

    /// term .Field*
    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind != ItemKind::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().kind == ItemKind::Field {
            let f = self.next();
            fields.push(f.val[1..].to_string());
        }
        Ok(Some(match node {
            Arg::Field { mut ident, .. } => {
                ident.extend(fields);
                Arg::Field { pos, ident }
            }
            Arg::Variable { mut ident, .. } => {
                ident.extend(fields);
                Arg::Variable { pos, ident }
            }
            Arg::Bool(..) | Arg::Str { .. } | Arg::Number(..) | Arg::Nil(_) | Arg::Dot(_) => {
                return Err(
                    self.errorf(format!("unexpected . after term {}", crate::printf::go_quote(&node.to_string())))
                );
            }
            other => Arg::Chain { pos, node: Box::new(other), fields },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let it = self.next_non_space();
        Ok(Some(match it.kind {
            ItemKind::Identifier => {
                if !(self.has_func)(&it.val) {
                    return Err(self.errorf(format!("function {} not defined", crate::printf::go_quote(&it.val))));
                }
                Arg::Identifier { pos: it.pos, name: it.val }
            }
            ItemKind::Dot => Arg::Dot(it.pos),
            ItemKind::Nil => Arg::Nil(it.pos),
            ItemKind::Variable => {
                let ident: Vec<String> = it.val.split('.').map(str::to_string).collect();
                let name = ident.first().cloned().unwrap_or_default();
                if !self.vars.contains(&name) {
                    return Err(self.errorf(format!("undefined variable {}", crate::printf::go_quote(&name))));
                }
                Arg::Variable { pos: it.pos, ident }
            }
            ItemKind::Field => Arg::Field { pos: it.pos, ident: vec![it.val[1..].to_string()] },
            ItemKind::Bool => Arg::Bool(it.pos, it.val == "true"),
            ItemKind::CharConstant | ItemKind::Complex | ItemKind::Number => {
                let n = self.number(&it)?;
                Arg::Number(it.pos, n)
            }
            ItemKind::LeftParen => {
                self.enter()?;
                let p = self.pipeline("parenthesized pipeline", ItemKind::RightParen);
                self.depth -= 1;
                Arg::Pipe(Box::new(p?))
            }
            ItemKind::String | ItemKind::RawString => {
                let text = self.unquote(&it.val)?;
                Arg::Str { pos: it.pos, quoted: it.val, text }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }

    /// Go's `newNumber`.
    fn number(&self, it: &Item) -> PResult<Number> {
        let text = it.val.as_str();
        let mut n = Number { text: text.to_string(), int: None, uint: None, float: None };
        match it.kind {
            ItemKind::CharConstant => {
                let inner = &text[1..];
                let (c, tail) =
                    crate::printf::unquote_char(inner, '\'').ok_or_else(|| self.errorf("invalid syntax"))?;
                if tail != "'" {
                    return Err(self.errorf(format!("malformed character constant: {text}")));
                }
                n.int = Some(i64::from(c));
                n.uint = Some(u64::from(c));
                n.float = Some(f64::from(c));
                return Ok(n);
            }
            ItemKind::Complex => {
                return Err(
                    self.errorf(format!("complex constants are not supported: {}", crate::printf::go_quote(text)))
                );
            }
            _ => {}
        }
        if text.ends_with('i') {
            return Err(self.errorf(format!("complex constants are not supported: {}", crate::printf::go_quote(text))));
        }
        n.uint = parse_go_uint(text);
        n.int = parse_go_int(text);
        if n.int == Some(0) && n.uint.is_none() {
            n.uint = Some(0);
        }
        if let Some(i) = n.int {
            n.float = Some(i as f64);
        } else if let Some(u) = n.uint {
            n.float = Some(u as f64);
        } else if let Some(f) = parse_go_float(text) {
            // A float without '.', 'e' or 'p' would be an integer too large
            // to fit: Go rejects it.
            if !text.contains(['.', 'e', 'E', 'p', 'P']) {
                return Err(self.errorf(format!("integer overflow: {}", crate::printf::go_quote(text))));
            }
            n.float = Some(f);
            if f.fract() == 0.0 && f.abs() < 9.2e18 {
                n.int = Some(f as i64);
            }
            if f.fract() == 0.0 && (0.0..1.8e19).contains(&f) {
                n.uint = Some(f as u64);
            }
        }
        if n.int.is_none() && n.uint.is_none() && n.float.is_none() {
            return Err(self.errorf(format!("illegal number syntax: {}", crate::printf::go_quote(text))));
        }
        Ok(n)
    }
}

enum Elem {
    Node(Node),
    End,
    Else,
}

/// Splits sign, base and digits as `strconv.ParseInt(s, 0, 64)` does.
fn split_int(text: &str) -> Option<(bool, u32, String)> {
    let (neg, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = rest.to_ascii_lowercase();
    let (base, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    // Underscores are only allowed between digits (or after a base prefix).
    if digits.starts_with('_') && base == 10 || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() {
        return None;
    }
    Some((neg, base, digits))
}

fn parse_go_uint(text: &str) -> Option<u64> {
    let (neg, base, digits) = split_int(text)?;
    if neg || text.starts_with('+') {
        return None;
    }
    u64::from_str_radix(&digits, base).ok()
}

fn parse_go_int(text: &str) -> Option<i64> {
    let (neg, base, digits) = split_int(text)?;
    let v = i128::from_str_radix(&digits, base).ok()?;
    let v = if neg { -v } else { v };
    i64::try_from(v).ok()
}

fn parse_go_float(text: &str) -> Option<f64> {
    let t: String = text.chars().filter(|&c| c != '_').collect();
    let lower = t.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if unsigned.starts_with("0x") {
        return parse_hex_float(&lower);
    }
    if unsigned.is_empty() || unsigned == "." || unsigned.contains("inf") || unsigned.contains("nan") {
        return None;
    }
    // Out of range values are a syntax error, as strconv.ParseFloat fails.
    lower.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Hexadecimal floating point such as `0x1p-2`.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let s = s.strip_prefix("0x")?;
    let (mant, exp) = match s.split_once('p') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => return None,
    };
    let (int_part, frac_part) = mant.split_once('.').unwrap_or((mant, ""));
    let mut v = 0f64;
    for c in int_part.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac_part.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Tree, Error> {
        parse(s, &|n| n == "printf" || n == "len")
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_go_int("0x1F"), Some(31));
        assert_eq!(parse_go_int("0o17"), Some(15));
        assert_eq!(parse_go_int("017"), Some(15));
        assert_eq!(parse_go_int("0b101"), Some(5));
        assert_eq!(parse_go_int("1_000"), Some(1000));
        assert_eq!(parse_go_int("-5"), Some(-5));
        assert_eq!(parse_go_uint("-5"), None);
        assert_eq!(parse_go_float("1e3"), Some(1000.0));
        assert_eq!(parse_go_float("0x1p-2"), Some(0.25));
    }

    #[test]
    fn display_round_trip() {
        let t = p("{{$x := .A.B | printf \"%d\" (len .C)}}").expect("parse");
        match &t.root[0] {
            Node::Action(a) => {
                assert_eq!(a.pipe.to_string(), "$x := .A.B | printf \"%d\" (len .C)")
            }
            other => panic!("unexpected node {other:?}"),
        }
    }

    #[test]
    fn parse_errors() {
        let msg = |s: &str| p(s).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(msg("{{foo}}"), "template: :1: function \"foo\" not defined");
        assert_eq!(msg("{{if .A}}"), "template: :1: unexpected EOF");
        assert_eq!(msg("{{end}}"), "template: :1: unexpected {{end}}");
        assert_eq!(msg("{{}}"), "template: :1: missing value for command");
        assert_eq!(msg("{{$x}}"), "template: :1: undefined variable \"$x\"");
        assert_eq!(msg("{{break}}"), "template: :1: {{break}} outside {{range}}");
        assert_eq!(msg("{{\"a\" | \"b\"}}"), "template: :1: non executable command in pipeline stage 2");
        assert_eq!(msg("{{ .A.}}"), "template: :1: unexpected <.> in operand");
        assert_eq!(msg("{{'ab'}}"), "template: :1: malformed character constant: 'ab'");
    }
}
