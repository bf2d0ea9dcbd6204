//! Raw parser behaviour: heredocs, line numbers, continuations, directives,
//! and error wording (cases follow BuildKit's parser tests).

use berth_dockerfile::{parse, Error, Heredoc};

fn heredoc(name: &str, content: &str, expand: bool, chomp: bool, fd: u64) -> Heredoc {
    Heredoc { name: name.to_string(), file_descriptor: fd, expand, chomp, content: content.to_string() }
}

#[test]
fn extracts_heredocs() {
    let text = r#"
FROM alpine:3.6

ENV NAME=me

RUN ls

USER <<INVALID
INVALID

RUN <<EMPTY
EMPTY

RUN 3<<EMPTY2
EMPTY2

RUN "<<NOHEREDOC"

RUN <<INDENT
	foo
	bar
INDENT

RUN <<-UNINDENT
	baz
	quux
UNINDENT

RUN <<-UNINDENT2
	baz
	quux
	UNINDENT2

RUN <<-EXPAND
	expand $NAME
EXPAND

RUN <<-'NOEXPAND'
	don't expand $NAME
NOEXPAND

RUN <<COPY
echo hello world
echo foo bar
COPY

RUN <<COMMENT
# internal comment
echo hello world
echo foo bar # trailing comment
COMMENT

RUN --mount=type=cache,target=/foo <<MOUNT
echo hello
MOUNT

COPY <<FILE1 <<FILE2 /dest
content 1
FILE1
content 2
FILE2

COPY <<EOF /quotes
"foo"
'bar'
EOF

COPY <<X <<Y /dest
Y
X
X
Y

RUN <<COMPLEX python3
print('hello world')
COMPLEX

COPY <<file.txt /dest
hello world
file.txt

RUN <<eo'f'
echo foo
eof

RUN <<eo\'f
echo foo
eo'f

RUN <<'e'o\'f
echo foo
eo'f

RUN <<'one two'
echo bar
one two

RUN <<$EOF
$EOF

RUN <<  EOF
EOF

RUN <<  EOF  > foo
EOF
	"#;
    let expected: Vec<Vec<Heredoc>> = vec![
        vec![],
        vec![],
        vec![],
        vec![],
        vec![heredoc("EMPTY", "", true, false, 0)],
        vec![heredoc("EMPTY2", "", true, false, 3)],
        vec![],
        vec![heredoc("INDENT", "\tfoo\n\tbar\n", true, false, 0)],
        vec![heredoc("UNINDENT", "\tbaz\n\tquux\n", true, true, 0)],
        vec![heredoc("UNINDENT2", "\tbaz\n\tquux\n", true, true, 0)],
        vec![heredoc("EXPAND", "\texpand $NAME\n", true, true, 0)],
        vec![heredoc("NOEXPAND", "\tdon't expand $NAME\n", false, true, 0)],
        vec![heredoc("COPY", "echo hello world\necho foo bar\n", true, false, 0)],
        vec![heredoc(
            "COMMENT",
            "# internal comment\necho hello world\necho foo bar # trailing comment\n",
            true,
            false,
            0,
        )],
        vec![heredoc("MOUNT", "echo hello\n", true, false, 0)],
        vec![heredoc("FILE1", "content 1\n", true, false, 0), heredoc("FILE2", "content 2\n", true, false, 0)],
        vec![heredoc("EOF", "\"foo\"\n'bar'\n", true, false, 0)],
        vec![heredoc("X", "Y\n", true, false, 0), heredoc("Y", "X\n", true, false, 0)],
        vec![heredoc("COMPLEX", "print('hello world')\n", true, false, 0)],
        vec![heredoc("file.txt", "hello world\n", true, false, 0)],
        vec![heredoc("eof", "echo foo\n", false, false, 0)],
        vec![heredoc("eo'f", "echo foo\n", true, false, 0)],
        vec![heredoc("eo'f", "echo foo\n", false, false, 0)],
        vec![heredoc("one two", "echo bar\n", false, false, 0)],
        vec![heredoc("$EOF", "", true, false, 0)],
        vec![heredoc("EOF", "", true, false, 0)],
        vec![heredoc("EOF", "", true, false, 0)],
    ];
    let result = parse(text).unwrap_or_else(|e| panic!("{e}"));
    for (i, want) in expected.iter().enumerate() {
        let node = &result.children[i + 1];
        assert_eq!(&node.heredocs, want, "node {} ({})", i + 1, node.original);
    }
}

#[test]
fn json_form_has_no_heredocs() {
    let text = "FROM alpine:3.6\n\nRUN [\"whoami\"]\nRUN [\"<<EOF\"]\nRUN [\"<<'EOF'\"]\n";
    let result = parse(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(result.children.len(), 4);
    for node in &result.children[1..] {
        assert!(node.heredocs.is_empty());
        assert!(node.json);
    }
}

#[test]
fn heredoc_edge_cases() {
    // Terminator lines with a chomp may be tab-indented; content keeps tabs.
    let r = parse("FROM a\nRUN <<-EOT\n\techo\n\t\tEOT\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.children[1].heredocs[0].content, "\techo\n");
    assert_eq!(r.children[1].heredocs[0].data(), "echo\n");
    assert_eq!((r.children[1].start_line, r.children[1].end_line), (2, 4));

    // Without `-`, an indented terminator is content.
    let err = parse("FROM a\nRUN <<EOT\n\tEOT\n").unwrap_err();
    assert_eq!(err.to_string(), "dockerfile parse error on line 2: unterminated heredoc");

    // CRLF line endings: terminator matches, content keeps them.
    let r = parse("FROM a\r\nRUN <<EOT\r\nx\r\nEOT\r\nRUN y\r\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.children[1].heredocs[0].content, "x\r\n");
    assert_eq!(r.children[2].args, ["y"]);

    // Heredoc in an ONBUILD trigger.
    let r = parse("FROM a\nONBUILD RUN <<EOT\nhi\nEOT\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.children[1].heredocs[0].content, "hi\n");
    assert_eq!(r.dump(), "(from \"a\")\n(onbuild (run \"<<EOT\"))");

    // Only RUN/COPY/ADD read heredocs.
    let r = parse("FROM a\nLABEL x=<<EOT\nRUN echo\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.children.len(), 3);

    // A heredoc body is not parsed for continuations or comments.
    let r = parse("FROM a\nCOPY <<EOF /f\n# not a comment \\\n\nEOF\nRUN b\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.children[1].heredocs[0].content, "# not a comment \\\n\n");
    assert_eq!(r.children[2].start_line, 6);

    // A line the lexer cannot split (unbalanced quotes) has no heredocs.
    let r = parse("FROM a\nRUN <<\"EOF'\nRUN b\n").unwrap_or_else(|e| panic!("{e}"));
    assert!(r.children[1].heredocs.is_empty());
    assert_eq!(r.children.len(), 3);

    // Heredoc after a continuation.
    let r = parse("FROM a\nRUN cat \\\n  <<EOF\nx\nEOF\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.children[1].heredocs[0].name, "EOF");
    assert_eq!(r.children[1].end_line, 5);
}

#[test]
fn includes_line_numbers() {
    let text = "# ESCAPE=\\\n\n\n\nFROM brimstone/ubuntu:14.04\n\n\n# TORUN -v /var/run/docker.sock:/var/run/docker.sock\n\n\nENV GOPATH \\\n/go\n\n\n\n# Install the packages we need, clean up after them and us\nRUN apt-get update \\\n\t&& dpkg -l | awk '/^ii/ {print $2}' > /tmp/dpkg.clean \\\n\n\n    && apt-get --no-install-recommends install -y git golang ca-certificates \\\n    && apt-get clean \\\n    && rm -rf /var/lib/apt/lists \\\n\n\t&& go get -v github.com/brimstone/consuldock \\\n    && mv $GOPATH/bin/consuldock /usr/local/bin/consuldock \\\n\n\t&& dpkg -l | awk '/^ii/ {print $2}' > /tmp/dpkg.dirty \\\n\t&& apt-get remove --purge -y $(diff /tmp/dpkg.clean /tmp/dpkg.dirty | awk '/^>/ {print $2}') \\\n\t&& rm /tmp/dpkg.* \\\n\t&& rm -rf $GOPATH\n\n\n\n";
    let r = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<(usize, usize)> = r.children.iter().map(|c| (c.start_line, c.end_line)).collect();
    assert_eq!(lines, [(5, 5), (11, 12), (17, 31)]);
    assert_eq!(r.directive("escape"), Some("\\"));
    assert_eq!(r.warnings.len(), 1);
}

#[test]
fn warns_on_empty_continuation_lines() {
    let text = "\nFROM alpine:3.6\n\nRUN valid \\\n    continuation\n\nRUN something \\\n\n    following \\\n\n    more\n\nRUN another \\\n\n    thing\n\nRUN non-indented \\\n# this is a comment\n   after-comment\n\nRUN indented \\\n    # this is an indented comment\n    comment\n\t";
    let r = parse(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.warnings.len(), 2);
    assert!(r.warnings[0].short.contains("Empty continuation line found in"));
    assert!(r.warnings[0].short.contains("RUN something     following     more"));
    assert!(r.warnings[1].short.contains("RUN another     thing"));
    assert!(r.warnings[0].detail.contains("will become errors in a future release"));
    assert_eq!(r.children[4].args, ["non-indented    after-comment"]);
    assert_eq!(r.children[5].args, ["indented     comment"]);
}

#[test]
fn comments_attach_to_the_next_instruction() {
    let r = parse("# syntax=docker/dockerfile:1\n# base image\n  # second\nFROM a\n\n#\n# run it\nRUN b\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.children[0].comments, ["base image", "# second"]);
    assert_eq!(r.children[1].comments, ["run it"]);
    assert_eq!(r.directive("syntax"), Some("docker/dockerfile:1"));
}

#[test]
fn directives_and_escape() {
    let r = parse("\u{feff}# escape=`\n# check=skip=all\nFROM a\nRUN dir c:\\ `\n  && echo\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.escape_token, '`');
    assert_eq!(r.directive("check"), Some("skip=all"));
    assert_eq!(r.children[1].args, ["dir c:\\   && echo"]);

    let err = parse("# escape=x\nFROM a\n").unwrap_err();
    assert_eq!(err.to_string(), "dockerfile parse error on line 1: invalid escape token 'x' does not match ` or \\");
    let err = parse("# syntax=a\n# SYNTAX=b\nFROM a\n").unwrap_err();
    assert_eq!(err.to_string(), "dockerfile parse error on line 2: only one syntax parser directive can be used");
    // A directive after an instruction or a blank line is a comment.
    let r = parse("\n# escape=`\nFROM a \\\n b\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.escape_token, '\\');
    assert_eq!(r.dump(), "(from \"a\" \"b\")");
}

#[test]
fn flags_and_forms() {
    let r = parse(concat!(
        "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\n",
        "COPY --from=build --chown=1:1 --chmod=0644 --link --exclude=*.md --exclude=x /src /dst\n",
        "ADD --checksum=sha256:abc --keep-git-dir=true https://x/y.git /y\n",
        "RUN --mount=type=cache,target=/root/.cache --network=none [\"sh\", \"-c\", \"echo\"]\n",
        "HEALTHCHECK --interval=5s CMD [\"curl\", \"-f\", \"x\"]\n",
        "HEALTHCHECK NONE\n",
        "VOLUME [\"/a\", \"/b\"]\n",
        "VOLUME /c /d\n",
        "SHELL [\"/bin/bash\", \"-c\"]\n",
        "ENV A=1 B=\"2 3\"\n",
        "ENV C 4 5\n",
        "ARG X Y=z\n",
        "CMD [\"a\", 'b']\n",
        "foo bar\n",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let dump: Vec<String> = r.children.iter().map(|c| c.dump()).collect();
    assert_eq!(
        dump,
        [
            "from [\"--platform=$BUILDPLATFORM\"] \"golang:1.22\" \"AS\" \"build\"",
            "copy [\"--from=build\" \"--chown=1:1\" \"--chmod=0644\" \"--link\" \"--exclude=*.md\" \"--exclude=x\"] \"/src\" \"/dst\"",
            "add [\"--checksum=sha256:abc\" \"--keep-git-dir=true\"] \"https://x/y.git\" \"/y\"",
            "run [\"--mount=type=cache,target=/root/.cache\" \"--network=none\"] \"sh\" \"-c\" \"echo\"",
            "healthcheck [\"--interval=5s\"] \"CMD\" \"curl\" \"-f\" \"x\"",
            "healthcheck \"NONE\"",
            "volume \"/a\" \"/b\"",
            "volume \"/c\" \"/d\"",
            "shell \"/bin/bash\" \"-c\"",
            "env \"A\" \"1\" \"=\" \"B\" \"\\\"2 3\\\"\" \"=\"",
            "env \"C\" \"4 5\" \"\"",
            "arg \"X\" \"Y=z\"",
            "cmd \"[\\\"a\\\", 'b']\"",
            "foo \"\"",
        ]
    );
    assert!(r.children[3].json);
    assert!(!r.children[12].json);
}

#[test]
fn parser_errors() {
    let cases = [
        ("", "dockerfile parse error on line 1: file with no instructions"),
        ("# only\n\n", "dockerfile parse error on line 2: file with no instructions"),
        ("FROM a\nENV PATH\n", "dockerfile parse error on line 2: ENV must have two arguments"),
        (
            "FROM a\nLABEL a=b c\n",
            "dockerfile parse error on line 2: Syntax error - can't find = in \"c\". Must be of the form: name=value",
        ),
        (
            "FROM a\nCMD [\"a\", 1]\n",
            "dockerfile parse error on line 2: when using JSON array syntax, arrays must be comprised of strings only",
        ),
        ("FROM a\nRUN <<EOF\nx\n", "dockerfile parse error on line 2: unterminated heredoc"),
    ];
    for (text, want) in cases {
        let err = parse(text).unwrap_err();
        assert_eq!(err.to_string(), want, "{text:?}");
        assert_eq!(err.kind(), berth_error::ErrorKind::InvalidArgument);
    }
    // A line longer than BuildKit's scanner buffer.
    let long = format!("FROM image\nLABEL test={}\n", "a".repeat(65536));
    let err = parse(&long).unwrap_err();
    assert_eq!(err.message(), "dockerfile line greater than max allowed size of 65535");
    assert!(matches!(err, Error::Parse { line: 2, .. }));
}

#[test]
fn continuation_at_eof_and_lone_escape() {
    let r = parse("FROM a\nRUN x \\").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.children[1].args, ["x"]);
    let r = parse("\\\nFROM a\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.dump(), "(from \"a\")");
}
