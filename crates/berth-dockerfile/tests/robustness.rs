//! Arbitrary input never panics: parser, instruction parser, lexer and
//! expansion are run on deterministic pseudo-random text.

use berth_dockerfile::{expand, instructions, parse, EnvList, Lexer, MountSpec};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const PIECES: &[&str] = &[
    "FROM ",
    "RUN ",
    "COPY ",
    "ADD ",
    "ENV ",
    "LABEL ",
    "ARG ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "CMD ",
    "SHELL ",
    "VOLUME ",
    "EXPOSE ",
    "WORKDIR ",
    "USER ",
    "STOPSIGNAL ",
    "MAINTAINER ",
    "ENTRYPOINT ",
    "FOO ",
    "--mount=",
    "--from=",
    "--chown=",
    "--",
    "-",
    "type=cache,",
    "target=",
    "a",
    "b",
    "é",
    "안녕",
    "\u{a0}",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\\",
    "`",
    "\\\n",
    "'",
    "\"",
    "$",
    "${",
    "}",
    "{",
    ":-",
    ":+",
    ":?",
    "#",
    "##",
    "%",
    "%%",
    "/",
    "//",
    "*",
    "?",
    "<<",
    "<<-",
    "EOF",
    "\nEOF\n",
    "[",
    "]",
    ",",
    "=",
    "# escape=`\n",
    "# syntax=x\n",
    "\u{feff}",
    "\\u00",
    "AS ",
    "NONE",
];

fn random_text(rng: &mut Rng) -> String {
    let n = 1 + rng.next() % 40;
    (0..n).map(|_| rng.pick(PIECES)).collect()
}

#[test]
fn arbitrary_input_does_not_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let env = EnvList::from_strings(["a=1", "b=x y", "EOF=z"]);
    for _ in 0..4000 {
        let text = random_text(&mut rng);
        for escape in ['\\', '`'] {
            let lex = Lexer::new(escape);
            let _ = lex.process_word(&text, &env);
            let _ = lex.process_words(&text, &env);
        }
        let _ = MountSpec::parse(&text);
        if let Ok(ast) = parse(&text) {
            let _ = ast.dump();
            if let Ok(df) = instructions::parse(&ast) {
                for stage in &df.stages {
                    let _ = berth_dockerfile::expand_from(stage, df.escape_token, &env);
                    for cmd in &stage.commands {
                        let _ = expand(cmd, df.escape_token, &env);
                        if let berth_dockerfile::Instruction::Run(run) = &cmd.instruction {
                            let _ = run.script(false);
                        }
                    }
                }
            }
        }
    }
}
