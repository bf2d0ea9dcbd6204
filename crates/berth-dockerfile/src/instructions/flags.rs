//! Instruction flags (BuildKit `instructions/bflag.go`).
//!
//! Each instruction declares the flags it accepts; parsing then checks the
//! `--name[=value]` words the line parser split off: unknown names, repeats
//! of non-list flags, missing values, and booleans other than true/false are
//! errors with BuildKit's wording. A bare `--` ends the flags.

use crate::suggest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlagType {
    Bool,
    String,
    Strings,
}

#[derive(Debug)]
struct Flag {
    name: &'static str,
    kind: FlagType,
    value: String,
    values: Vec<String>,
}

/// The declared flags of one instruction and the words given for them.
#[derive(Debug)]
pub(crate) struct BFlags {
    args: Vec<String>,
    flags: Vec<Flag>,
    used: Vec<&'static str>,
}

impl BFlags {
    pub(crate) fn new(args: &[String]) -> Self {
        BFlags { args: args.to_vec(), flags: Vec::new(), used: Vec::new() }
    }

    fn add(&mut self, name: &'static str, kind: FlagType, value: &str) {
        self.flags.push(Flag { name, kind, value: value.to_string(), values: Vec::new() });
    }

    pub(crate) fn add_bool(&mut self, name: &'static str) {
        self.add(name, FlagType::Bool, "false");
    }

    pub(crate) fn add_string(&mut self, name: &'static str, default: &str) {
        self.add(name, FlagType::String, default);
    }

    pub(crate) fn add_strings(&mut self, name: &'static str) {
        self.add(name, FlagType::Strings, "");
    }

    fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.name == name)
    }

    /// The value of a string flag (its default when not given).
    pub(crate) fn string(&self, name: &str) -> String {
        self.flag(name).map(|f| f.value.clone()).unwrap_or_default()
    }

    /// The value of a string flag, `None` when empty (BuildKit treats an
    /// empty value as unset).
    pub(crate) fn opt_string(&self, name: &str) -> Option<String> {
        Some(self.string(name)).filter(|s| !s.is_empty())
    }

    /// The value of a bool flag.
    pub(crate) fn bool(&self, name: &str) -> bool {
        self.flag(name).is_some_and(|f| f.value == "true")
    }

    /// The value of a bool flag, `None` when the flag was not given.
    pub(crate) fn opt_bool(&self, name: &str) -> Option<bool> {
        self.is_used(name).then(|| self.bool(name))
    }

    /// Every value given to a list flag.
    pub(crate) fn strings(&self, name: &str) -> Vec<String> {
        self.flag(name).map(|f| f.values.clone()).unwrap_or_default()
    }

    pub(crate) fn is_used(&self, name: &str) -> bool {
        self.used.contains(&name)
    }

    /// Names of the flags given, in first-use order.
    pub(crate) fn used(&self) -> Vec<String> {
        self.used.iter().map(|s| (*s).to_string()).collect()
    }

    /// Checks the given words against the declared flags.
    pub(crate) fn parse(&mut self) -> Result<(), String> {
        let args = std::mem::take(&mut self.args);
        for a in &args {
            if a == "--" {
                return Ok(());
            }
            if !a.starts_with("--") {
                return Err(format!("arg should start with -- : {a}"));
            }
            let (flag_name, value, has_value) = match a.split_once('=') {
                Some((n, v)) => (n, v, true),
                None => (a.as_str(), "", false),
            };
            let arg = &flag_name[2..];
            let Some(idx) = self.flags.iter().position(|f| f.name == arg) else {
                let names: Vec<&str> = self.flags.iter().map(|f| f.name).collect();
                return Err(suggest::wrap(format!("unknown flag: {flag_name}"), arg, &names, true));
            };
            let flag = &mut self.flags[idx];
            if self.used.contains(&flag.name) && flag.kind != FlagType::Strings {
                return Err(format!("duplicate flag specified: {flag_name}"));
            }
            if !self.used.contains(&flag.name) {
                self.used.push(flag.name);
            }
            match flag.kind {
                FlagType::Bool => {
                    // `--flag=` needs a value, `--flag` alone means true.
                    if has_value && value.is_empty() {
                        return Err(format!("missing a value on flag: {flag_name}"));
                    }
                    flag.value = match value.to_lowercase().as_str() {
                        "true" | "" => "true".to_string(),
                        "false" => "false".to_string(),
                        _ => return Err(format!("expecting boolean value for flag {flag_name}, not: {value}")),
                    };
                }
                FlagType::String => {
                    if !has_value {
                        return Err(format!("missing a value on flag: {flag_name}"));
                    }
                    flag.value = value.to_string();
                }
                FlagType::Strings => {
                    if !has_value {
                        return Err(format!("missing a value on flag: {flag_name}"));
                    }
                    flag.values.push(value.to_string());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> BFlags {
        let args: Vec<String> = args.iter().map(|s| (*s).to_string()).collect();
        let mut bf = BFlags::new(&args);
        bf.add_string("str1", "HI");
        bf.add_bool("bool1");
        bf.add_strings("list");
        bf
    }

    #[test]
    fn parses_like_buildkit() {
        let mut bf = flags(&[]);
        assert_eq!(bf.parse(), Ok(()));
        assert_eq!(bf.string("str1"), "HI");
        assert!(!bf.bool("bool1"));
        assert!(!bf.is_used("str1"));

        let mut bf = flags(&["--str1=x", "--bool1", "--list=a", "--list=b", "--", "--nope"]);
        assert_eq!(bf.parse(), Ok(()));
        assert_eq!(bf.string("str1"), "x");
        assert!(bf.bool("bool1"));
        assert_eq!(bf.strings("list"), ["a", "b"]);
        assert_eq!(bf.used(), ["str1", "bool1", "list"]);

        let errors = [
            (vec!["--str1"], "missing a value on flag: --str1"),
            (vec!["--bool1="], "missing a value on flag: --bool1"),
            (vec!["--bool1=maybe"], "expecting boolean value for flag --bool1, not: maybe"),
            (vec!["--str1=a", "--str1=b"], "duplicate flag specified: --str1"),
            (vec!["--str2=a"], "unknown flag: --str2 (did you mean str1?)"),
            (vec!["--zzzzz"], "unknown flag: --zzzzz"),
            (vec!["-x"], "arg should start with -- : -x"),
        ];
        for (args, want) in errors {
            let mut bf = flags(&args);
            assert_eq!(bf.parse(), Err(want.to_string()), "{args:?}");
        }
        let mut bf = flags(&["--bool1=FALSE"]);
        assert_eq!(bf.parse(), Ok(()));
        assert_eq!(bf.opt_bool("bool1"), Some(false));
    }
}
