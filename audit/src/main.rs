//! `blindmatch-audit`: a list organisation's tool (SPEC Section 15). Thin:
//! it parses flags, calls the library and prints what it returns.

use std::process::ExitCode;

use blindmatch_audit::cli::{Cli, Command};
use blindmatch_audit::{CoSigning, cosign, verify};
use clap::Parser;

fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Monitor(args) => {
            return match args
                .resolve()
                .and_then(|o| blindmatch_audit::monitor::monitor(&o))
            {
                Ok(report) => {
                    print!("{report}");
                    if report.findings.is_empty() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Verify(inputs) => inputs
            .resolve()
            .map_err(Into::into)
            .and_then(|i| verify(&i))
            .map(|p| p.to_string()),
        Command::Cosign {
            inputs,
            signing_key,
            name,
            out,
        } => inputs.resolve().map_err(Into::into).and_then(|i| {
            cosign(
                &i,
                &CoSigning {
                    signing_key,
                    name,
                    out,
                },
            )
            .map(|c| c.to_string())
        }),
    };
    match outcome {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{e}");
            if !e.to_string().ends_with('\n') {
                eprintln!();
            }
            ExitCode::FAILURE
        }
    }
}
