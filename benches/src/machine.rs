//! What machine this is, and what a process costs (from `/proc`).

/// The CPU model name from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// "CPU (N cores, backend B, arithmetic A)": the line every benchmark's
/// report starts with.
pub fn summary() -> String {
    format!(
        "{} ({} cores, backend {}, arithmetic {})",
        cpu_model(),
        cores(),
        backend(),
        arithmetic()
    )
}

/// What the server opens vouchers with on this CPU: blindmatch-batchmul's
/// eight-way AVX-512 IFMA kernel, or curve25519-dalek (chosen once, as the
/// server does).
pub fn arithmetic() -> blindmatch_batchmul::Backend {
    blindmatch_batchmul::Backend::detect()
}

/// Cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The curve25519-dalek backend that runs here: the AVX-512 IFMA backend if
/// it was compiled in (`.cargo/config.toml`) and the CPU has IFMA, else AVX2
/// if the CPU has it, else the serial backend. This mirrors dalek's own
/// run-time selection (`get_selected_backend`).
pub fn backend() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        let ifma = std::arch::is_x86_feature_detected!("avx512ifma")
            && std::arch::is_x86_feature_detected!("avx512vl");
        if cfg!(curve25519_dalek_backend = "avx512") && ifma {
            return "avx512ifma";
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return "avx2";
        }
    }
    "serial"
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Peak resident set size of a process, in bytes (`VmHWM`).
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    status_kb(pid, "VmHWM:").map(|kb| kb * 1024)
}

/// Current resident set size, in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    status_kb(pid, "VmRSS:").map(|kb| kb * 1024)
}

/// User plus system CPU time of a process so far, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux this runs on (it is fixed by the ABI).
    Some((utime + stime) / 100.0)
}

/// Waits until process `pid` has used less than 10 ms of CPU in 100 ms
/// (the server has evaluated what it acknowledged), and returns when its
/// last busy interval ended: a load window ends there.
pub async fn wait_idle(pid: u32) -> std::time::Instant {
    let mut last = cpu_seconds(pid).unwrap_or(0.0);
    let mut idle_since = std::time::Instant::now();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let now = cpu_seconds(pid).unwrap_or(0.0);
        if now - last < 0.01 {
            return idle_since;
        }
        last = now;
        idle_since = std::time::Instant::now();
    }
}
