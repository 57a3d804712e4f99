#![recursion_limit = "512"]
//! `envline`: the server binary and its command line.

mod cli;
mod rest;
mod serve;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ENVLINE_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,sqlx=warn,leptos_axum=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli::run(args).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("envline: {message}");
            ExitCode::from(2)
        }
    }
}
