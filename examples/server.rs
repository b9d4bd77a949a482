//! An API server whose every key may make a limited number of requests.
//!
//! ```text
//! cargo run --release --example server [-- --addr HOST:PORT --quota "100/min"]
//! curl -i -H 'X-API-Key: alice' http://127.0.0.1:3000/api/data
//! ```

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use axum::{routing::get, Json, Router};
use hotlimit::http::RateLimitLayer;
use hotlimit::Quota;
use serde_json::{json, Value};

const USAGE: &str = "\
Usage: server [--addr HOST:PORT] [--quota QUOTA]

Options:
  --addr HOST:PORT  address to listen on (default 127.0.0.1:3000)
  --quota QUOTA     requests allowed per API key, such as 100/min, 10/s or 5000/h
                    (default 100/min)
  -h, --help        print this help";

/// What the command line asked for.
struct Options {
    addr: SocketAddr,
    quota: Quota,
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    match serve(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Serves until Ctrl-C, then finishes the requests in flight.
async fn serve(options: Options) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    let app = Router::new()
        .route("/api/data", get(data))
        .layer(RateLimitLayer::new(options.quota));

    println!(
        "hotlimit example server listening on http://{} ({} per API key)",
        listener.local_addr()?,
        options.quota
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            // If the handler cannot be installed, run until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await
}

/// `GET /api/data`.
async fn data() -> Json<Value> {
    Json(json!({ "data": { "message": "hello from hotlimit", "items": [1, 2, 3] } }))
}

/// Reads `--addr` and `--quota` (as `--flag value` or `--flag=value`); `None` asks for help.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
        quota: Quota::per_minute(100).map_err(|e| e.to_string())?,
    };

    while let Some(arg) = args.next() {
        // Split `--flag=value`; otherwise the value is the next argument.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };

        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--addr" => options.addr = parse_addr(&value()?)?,
            "--quota" => {
                let text = value()?;
                options.quota = text.parse().map_err(|e| format!("bad --quota: {e}"))?;
            }
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }

    Ok(Some(options))
}

/// `HOST:PORT`, where the host may be a name such as `localhost`.
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let bad = |reason: String| format!("bad --addr {text:?}: {reason}");
    text.to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("the name has no address".to_owned()))
}
