//! An API server whose every key may make a limited number of requests.
//!
//! ```text
//! cargo run --release --example server [-- --addr HOST:PORT --quota "100/min"]
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
//! - For load tests (`scripts/load-test.sh`): `--no-limit` serves the same routes without the
//!   layers; `--fixed-headers` does too, but adds the five rate-limit header fields, fixed, to
//!   each `GET /api/data` response, to tell what the fields cost HTTP from what the limiter
//!   costs; `--no-headers` keeps the layers and sends no rate-limit header fields.

use std::fmt;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use axum::handler::HandlerWithoutStateExt;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use axum::routing::{get, get_service, post, post_service};
use axum::{Json, Router};
use hotlimit::http::{KeyExtractor, Policy, RateLimitLayer};
use hotlimit::{Overflow, Quota};
use serde_json::{json, Value};
use tower::util::MapResponse;
use tower::Layer;

const USAGE: &str = "\
Usage: server [--addr HOST:PORT] [--quota QUOTA] [--no-headers | --no-limit | --fixed-headers]

Options:
  --addr HOST:PORT  address to listen on (default 127.0.0.1:3000)
  --quota QUOTA     requests allowed per free-tier API key, such as 100/min, 10/s or
                    5000/h (default 100/min); keys starting with pro_ get 1000/min
  --no-headers      send no rate-limit header fields
  --no-limit        serve without rate limits (a baseline for load tests)
  --fixed-headers   serve without rate limits, but add the five rate-limit header fields of
                    a free-tier key, fixed, to each GET /api/data response (a baseline for
                    load tests)
  -h, --help        print this help";

/// The most keys each limiter holds before new keys share one bucket.
const MAX_KEYS: usize = 1_000_000;

/// What the command line asked for.
struct Options {
    addr: SocketAddr,
    quota: Quota,
    mode: Mode,
}

/// What stands between a request and its handler.
enum Mode {
    /// The rate-limit layers, with or without their header fields.
    Limit { headers: bool },
    /// Nothing.
    NoLimit,
    /// No limits, but the header fields a limit would send, fixed.
    FixedHeaders,
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            say(&mut std::io::stdout(), format_args!("{USAGE}"));
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            say(
                &mut std::io::stderr(),
                format_args!("error: {message}\n\n{USAGE}"),
            );
            return ExitCode::from(2);
        }
    };

    match serve(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            say(&mut std::io::stderr(), format_args!("error: {err}"));
            ExitCode::FAILURE
        }
    }
}

/// Writes a line, ignoring a closed stream: `server --help | head -1` must not panic.
fn say(out: &mut impl Write, text: fmt::Arguments<'_>) {
    let _ = writeln!(out, "{text}");
}

/// Serves until Ctrl-C, then finishes the requests in flight.
async fn serve(options: Options) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    let app = match options.mode {
        Mode::Limit { headers } => {
            let (api, login) = policies(options.quota, headers).map_err(std::io::Error::other)?;
            let (api, login) = (
                RateLimitLayer::from_policy(api),
                RateLimitLayer::from_policy(login),
            );
            // Each handler is wrapped as a service: only requests that match a route and its
            // method are charged (a 404 or a 405 costs no token), and axum boxes the layered
            // service once, where `route_layer` would box the handler and then the layer.
            Router::new()
                .route("/api/data", get_service(api.layer(data.into_service())))
                .route(
                    "/login",
                    post_service(login.layer(login_handler.into_service())),
                )
        }
        Mode::NoLimit => Router::new()
            .route("/api/data", get(data))
            .route("/login", post(login_handler)),
        Mode::FixedHeaders => {
            let fields = fixed_fields(options.quota);
            let add = move |mut response: Response| {
                let headers = response.headers_mut();
                headers.reserve(fields.len());
                for (name, value) in &fields {
                    headers.insert(name, value.clone());
                }
                response
            };
            Router::new()
                .route(
                    "/api/data",
                    get_service(MapResponse::new(data.into_service(), add)),
                )
                .route("/login", post(login_handler))
        }
    };

    let addr = listener.local_addr()?;
    let limits = match options.mode {
        Mode::Limit { .. } => format!(
            "{} per API key, 1000/min for pro_ keys, 5/min per IP on POST /login",
            options.quota
        ),
        Mode::NoLimit | Mode::FixedHeaders => "no rate limits".to_owned(),
    };
    say(
        &mut std::io::stdout(),
        format_args!("hotlimit example server listening on http://{addr} ({limits})"),
    );
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

/// The API's tiers, and the login limit per client address; `headers` says whether responses
/// carry the rate-limit header fields.
fn policies(
    free: Quota,
    headers: bool,
) -> Result<(Policy, Policy), Box<dyn std::error::Error + Send + Sync>> {
    let api = Policy::builder("api")
        .draft_headers(headers)
        .legacy_headers(headers)
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
        .draft_headers(headers)
        .legacy_headers(headers)
        .quota(Quota::per_minute(5)?)
        .key(KeyExtractor::peer_ip())
        .max_keys(MAX_KEYS, Overflow::Shared)
        .build()?;
    Ok((api, login))
}

/// The five fields a free-tier key's first request gets, fixed: what `--fixed-headers` adds
/// to each response of `GET /api/data`, to measure what sending them costs without a limiter.
///
/// The texts live for the process, so a response copies each value as a pointer, as the
/// layer's fixed values are copied.
fn fixed_fields(free: Quota) -> [(HeaderName, HeaderValue); 5] {
    let count = free.count();
    let window = free.period().as_nanos().div_ceil(1_000_000_000).max(1);
    let value = |text: String| HeaderValue::from_static(Box::leak(text.into_boxed_str()));
    [
        (
            "ratelimit-policy",
            format!("\"api.free\";q={count};w={window}"),
        ),
        ("ratelimit", format!("\"api.free\";r={};t=1", count - 1)),
        ("x-ratelimit-limit", count.to_string()),
        ("x-ratelimit-remaining", (count - 1).to_string()),
        ("x-ratelimit-reset", "1".to_owned()),
    ]
    .map(|(name, text)| (HeaderName::from_static(name), value(text)))
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
        mode: Mode::Limit { headers: true },
    };
    let (mut no_headers, mut no_limit, mut fixed_headers) = (false, false, false);

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

        let switch = matches!(
            flag.as_str(),
            "-h" | "--help" | "--no-headers" | "--no-limit" | "--fixed-headers"
        );
        if switch && inline.is_some() {
            return Err(format!("{flag} takes no value"));
        }
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--no-headers" => no_headers = true,
            "--no-limit" => no_limit = true,
            "--fixed-headers" => fixed_headers = true,
            "--addr" => options.addr = parse_addr(&value()?)?,
            "--quota" => {
                let text = value()?;
                options.quota = text.parse().map_err(|e| format!("bad --quota: {e}"))?;
            }
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }

    options.mode = match (no_headers, no_limit, fixed_headers) {
        (no_headers, false, false) => Mode::Limit {
            headers: !no_headers,
        },
        (false, true, false) => Mode::NoLimit,
        (false, false, true) => Mode::FixedHeaders,
        _ => return Err("--no-headers, --no-limit and --fixed-headers exclude each other".into()),
    };
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
