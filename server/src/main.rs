#![recursion_limit = "512"]
//! `envline`: the server binary and its command line.

mod cli;
mod client;
mod rest;
mod serve;
mod site;
mod sso;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    // Exit 2 means "refused by a gate or a rule" for the client commands, so a
    // mistyped command line exits 1, not clap's usual 2.
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ENVLINE_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(
                    "info,sqlx=warn,leptos_axum=warn,memory_serve=warn",
                )
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli::run(args).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("envline: {message}");
            ExitCode::from(1)
        }
    }
}
