//! A private, throwaway `redis-server` child process that can be killed and restarted.
//!
//! The Redis-first design is measured through a Redis crash, so it cannot use the stack's
//! shared Redis: this one listens on a random loopback port, keeps nothing on disk
//! (`--save "" --appendonly no`) and comes back empty after [`PrivateRedis::restart`],
//! exactly like a cache node that lost its memory.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::BenchError;

const START_PATIENCE: Duration = Duration::from_secs(10);

pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Start on a free loopback port and wait until it accepts connections.
    pub async fn start() -> Result<Self, BenchError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| BenchError::io("finding a free port", e))?
            .port();
        let mut redis = Self { port, child: None };
        redis.spawn().await?;
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    async fn spawn(&mut self) -> Result<(), BenchError> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--maxclients", "10000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| BenchError::io("starting redis-server", e))?;
        self.child = Some(child);
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            if started.elapsed() > START_PATIENCE {
                return Err(BenchError::RedisStart {
                    port: self.port,
                    waited: START_PATIENCE,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// SIGKILL: everything in memory is gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kill and start again, empty, on the same port.
    pub async fn restart(&mut self) -> Result<(), BenchError> {
        self.kill9();
        self.spawn().await
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill9();
    }
}
