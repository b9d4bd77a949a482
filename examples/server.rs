//! An API server whose every key may make a limited number of requests.
//!
//! ```text
//! cargo run --release --example server [-- --addr HOST:PORT --quota "100/min" --no-limit]
//! curl -i -H 'X-API-Key: alice' http://127.0.0.1:3000/api/data
//! curl -i -H 'X-API-Key: pro_bob' http://127.0.0.1:3000/api/data
//! curl -i -X POST http://127.0.0.1:3000/login
//! ```
//!
//! - `GET /api/data` is limited per `X-API-Key`, in two tiers: keys starting with `pro_` get
//!   1000 requests a minute, every other key gets the `--quota` (100 a minute by default).
//!   A request without a key gets `401`.
//! - `POST /login` is limited to 5 a minute per client IP address (the connection's peer, from
//!   axum's `ConnectInfo`; behind a proxy, use `KeyExtractor::client_ip` instead), whatever
//!   the key: a second policy with buckets of its own.
//! - Each limiter holds at most a million keys; new keys beyond that share one bucket
//!   (`Overflow::Shared`), so a flood of made-up keys cannot exhaust memory. Idle keys leave
//!   after a minute.
//! - `--no-limit` serves the same routes without the layers, as a baseline for load tests.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use axum::routing::{get, post};
use axum::{Json, Router};
use hotlimit::http::{KeyExtractor, Policy, RateLimitLayer};
use hotlimit::{Overflow, Quota};
use serde_json::{json, Value};

const USAGE: &str = "\
Usage: server [--addr HOST:PORT] [--quota QUOTA] [--no-limit]

Options:
  --addr HOST:PORT  address to listen on (default 127.0.0.1:3000)
  --quota QUOTA     requests allowed per free-tier API key, such as 100/min, 10/s or
                    5000/h (default 100/min); keys starting with pro_ get 1000/min
  --no-limit        serve without rate limits (a baseline for load tests)
  -h, --help        print this help";

/// The most keys each limiter holds before new keys share one bucket.
const MAX_KEYS: usize = 1_000_000;

/// What the command line asked for.
struct Options {
    addr: SocketAddr,
    quota: Quota,
    limit: bool,
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
    let app = if options.limit {
        let (api, login) = policies(options.quota).map_err(std::io::Error::other)?;
        // `route_layer`: only requests that match a route (and method) are charged, so a 404
        // or a 405 costs no token.
        Router::new()
            .route("/api/data", get(data))
            .route_layer(RateLimitLayer::from_policy(api))
            .route(
                "/login",
                post(login_handler).route_layer(RateLimitLayer::from_policy(login)),
            )
    } else {
        Router::new()
            .route("/api/data", get(data))
            .route("/login", post(login_handler))
    };

    let addr = listener.local_addr()?;
    if options.limit {
        println!(
            "hotlimit example server listening on http://{addr} ({} per API key, 1000/min \
             for pro_ keys, 5/min per IP on POST /login)",
            options.quota
        );
    } else {
        println!("hotlimit example server listening on http://{addr} (no rate limits)");
    }
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            // If the handler cannot be installed, run until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await
}

/// The API's tiers, and the login limit per client address.
fn policies(free: Quota) -> Result<(Policy, Policy), Box<dyn std::error::Error + Send + Sync>> {
    let api = Policy::builder("api")
        .tier("free", [free])
        .tier("pro", [Quota::per_minute(1000)?])
        .select_tier(|key, _| {
            if key.starts_with(b"pro_") {
                "pro"
            } else {
                "free"
            }
        })
        .max_keys(MAX_KEYS, Overflow::Shared)
        .build()?;
    let login = Policy::builder("login")
        .quota(Quota::per_minute(5)?)
        .key(KeyExtractor::peer_ip())
        .max_keys(MAX_KEYS, Overflow::Shared)
        .build()?;
    Ok((api, login))
}

/// `POST /login`.
async fn login_handler() -> Json<Value> {
    Json(json!({ "token": "example-session-token" }))
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
        limit: true,
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
            "--no-limit" => options.limit = false,
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
