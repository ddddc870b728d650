//! `blindmatch-server`: the operator's command line. Thin: it parses flags and
//! calls the library.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "blindmatch-server",
    version,
    about = "blindmatch list operator tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole protocol on a built-in sample list and show what each
    /// side sees. Exits 0 only if exactly the listed items submitted matched.
    Demo(blindmatch_server::demo::DemoArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => blindmatch_server::demo::run(&args),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
