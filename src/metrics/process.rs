//! The standard `process_*` metrics (as every Prometheus client library
//! exports them), read from /proc/self at each scrape: CPU seconds, resident
//! and virtual memory, open and maximum file descriptors, start time.
//! Off Linux, or when /proc is unreadable, they are left out of the scrape.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// One `process_*` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Process {
    CpuSeconds,
    ResidentBytes,
    VirtualBytes,
    OpenFds,
    MaxFds,
    StartTimeSeconds,
}

impl Process {
    /// (name without unit, unit, help) of each, as `Metrics::new` registers them.
    pub(super) const ALL: [(Process, &'static str, Option<&'static str>, &'static str); 6] = [
        (Process::CpuSeconds, "process_cpu", Some("seconds"), "Total user and system CPU time spent in seconds"),
        (Process::ResidentBytes, "process_resident_memory", Some("bytes"), "Resident memory size in bytes"),
        (Process::VirtualBytes, "process_virtual_memory", Some("bytes"), "Virtual memory size in bytes"),
        (Process::OpenFds, "process_open_fds", None, "Number of open file descriptors"),
        (Process::MaxFds, "process_max_fds", None, "Maximum number of open file descriptors"),
        (
            Process::StartTimeSeconds,
            "process_start_time",
            Some("seconds"),
            "Start time of the process since the Unix epoch in seconds",
        ),
    ];

    fn value(self) -> Option<f64> {
        match self {
            Process::OpenFds => Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as f64),
            Process::MaxFds => {
                let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                // SAFETY: getrlimit writes the struct it is given.
                (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim.rlim_cur as f64)
            }
            _ => {
                let stat = Stat::read()?;
                Some(match self {
                    Process::CpuSeconds => stat.cpu_seconds,
                    Process::ResidentBytes => stat.resident_bytes,
                    Process::VirtualBytes => stat.virtual_bytes,
                    _ => stat.start_time_seconds,
                })
            }
        }
    }
}

impl EncodeMetric for Process {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let Some(v) = self.value() else { return Ok(()) };
        if *self == Process::CpuSeconds {
            encoder.encode_counter::<NoLabelSet, _, u64>(&v, None)
        } else {
            encoder.encode_gauge(&v)
        }
    }

    fn metric_type(&self) -> MetricType {
        if *self == Process::CpuSeconds {
            MetricType::Counter
        } else {
            MetricType::Gauge
        }
    }

    fn is_empty(&self) -> bool {
        self.value().is_none()
    }
}

/// What /proc/self/stat (proc(5)) and /proc/stat's `btime` say.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: f64,
}

impl Stat {
    fn read() -> Option<Stat> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        // SAFETY: sysconf only reads.
        let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
        Stat::parse(&stat, &boot, ticks as f64, page as f64)
    }

    fn parse(stat: &str, boot: &str, ticks: f64, page: f64) -> Option<Stat> {
        if ticks <= 0.0 || page <= 0.0 {
            return None;
        }
        // The command name may hold spaces and parentheses: fields start after the last ')'.
        let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
        // proc(5) numbers fields from 1 (pid) and 2 (comm): field n is fields[n - 3].
        let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
        let btime: f64 = boot.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
        Some(Stat {
            cpu_seconds: (field(14)? + field(15)?) / ticks,
            virtual_bytes: field(23)?,
            resident_bytes: field(24)? * page,
            start_time_seconds: btime + field(22)? / ticks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_past_the_command_name() {
        // proc(5): pid (comm) state ppid ... utime(14) stime(15) ... starttime(22) vsize(23) rss(24)
        let stat = "4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 8 0 1000 4096000 300 18446744073709551615";
        let s = Stat::parse(stat, "cpu 1 2\nbtime 1700000000\n", 100.0, 4096.0).unwrap();
        assert_eq!(
            s,
            Stat {
                cpu_seconds: 3.0,
                resident_bytes: 300.0 * 4096.0,
                virtual_bytes: 4096000.0,
                start_time_seconds: 1700000010.0,
            }
        );
        assert!(Stat::parse("4242 (x) S 1", "btime 1\n", 100.0, 4096.0).is_none(), "cut short");
    }

    #[test]
    fn this_process_reads_sensibly() {
        let s = Stat::read().expect("/proc is there on Linux");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(s.start_time_seconds <= now + 1.0 && s.start_time_seconds > now - 86_400.0, "{s:?}");
        assert!(s.resident_bytes > 1e5 && s.virtual_bytes >= s.resident_bytes, "{s:?}");
        assert!(Process::OpenFds.value().unwrap() >= 3.0);
        assert!(Process::MaxFds.value().unwrap() >= Process::OpenFds.value().unwrap());
    }
}
