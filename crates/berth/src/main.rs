//! The `berth` binary: `berth daemon …` runs the engine, anything else is the CLI.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = if args.get(1).map(String::as_str) == Some("daemon") {
        berth_daemon::main(args[2..].to_vec())
    } else {
        berth_cli::main(args)
    };
    std::process::exit(code);
}
