//! A throwaway `redis-server` on a free loopback port, for tests and benches.
//!
//! Persistence is off, the working directory is a fresh temporary one, and the process is killed
//! when the value is dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

/// Whether a `redis-server` binary is on `PATH`.
pub fn available() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts a server, or says why not: `None` (after printing a visible note) when there is no
/// `redis-server`, unless `HOTLIMIT_REQUIRE_REDIS=1`, where that is a failure.
pub fn start_or_skip(test: &str) -> Option<RedisServer> {
    if !available() {
        if std::env::var("HOTLIMIT_REQUIRE_REDIS").as_deref() == Ok("1") {
            panic!("{test}: redis-server not found and HOTLIMIT_REQUIRE_REDIS=1");
        }
        // Straight to stderr: the test harness would capture `eprintln!` from a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "{test}: skipping: redis-server not found"
        );
        return None;
    }
    Some(RedisServer::start())
}

impl RedisServer {
    /// Starts a server on a free port, trying a few ports if another process takes one first.
    pub fn start() -> RedisServer {
        for _ in 0..5 {
            let port = free_port();
            let mut server = RedisServer {
                child: None,
                port,
                dir: scratch_dir(port),
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("could not start redis-server");
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.spawn() {
            assert!(Instant::now() < deadline, "redis-server did not restart");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs one command over a plain connection and returns the raw reply.
    pub fn raw(&self, command: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut request = format!("*{}\r\n", command.len());
        for part in command {
            request.push_str(&format!("${}\r\n{}\r\n", part.len(), part));
        }
        stream.write_all(request.as_bytes()).expect("write");
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).expect("read");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Spawns the process and waits until it answers PING; false if it exited first.
    fn spawn(&mut self) -> bool {
        let _ = std::fs::create_dir_all(&self.dir);
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);

        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return false;
            }
            if self.ping() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }

    fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 16];
        stream.write_all(b"PING\r\n").is_ok()
            && stream
                .read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nobody listened on a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn scratch_dir(port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("hotlimit-redis-{}-{port}", std::process::id()))
}
