//! The memory budget: every buffer a command will allocate is computed first, with checked
//! arithmetic, from the settings and the data's headers, and charged to a [`Budget`]. A charge
//! that overflows or takes the total over the limit is refused with one line naming the setting,
//! the bytes it needs and the budget, before anything that size is allocated or any file is
//! created.
//!
//! The default limit is a share ([`SHARE_NUM`]/[`SHARE_DEN`]) of the smallest of: the physical
//! memory (`MemTotal` of `/proc/meminfo`), the cgroup's `memory.max`, and what is left of the
//! process's `RLIMIT_AS` and `RLIMIT_DATA`. The share leaves room for what the budget does not
//! count (the binary, thread stacks, the allocator's own overhead, short-lived text).
//! `--max-memory SIZE` replaces it.

use std::fmt;

/// Numerator of the share of the available memory the default budget takes.
pub const SHARE_NUM: u64 = 3;
/// Denominator of that share.
pub const SHARE_DEN: u64 = 4;
/// The default when no limit can be read (not Linux): 4 GiB.
pub const FALLBACK: u64 = 4 << 30;

/// A refused charge: over the budget, or a size that overflows 64 bits. One line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverBudget(pub String);

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OverBudget {}

/// A memory limit and what has been charged against it so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    limit: u64,
    /// Where the limit comes from, for messages ("--max-memory 512M", "3/4 of …").
    source: String,
    used: u64,
}

impl Budget {
    /// A budget of `limit` bytes; `source` says where the number comes from.
    pub fn new(limit: u64, source: impl Into<String>) -> Budget {
        Budget { limit, source: source.into(), used: 0 }
    }

    /// `--max-memory` if given, else the default of this machine and process.
    pub fn from_flag(max_memory: Option<u64>) -> Budget {
        match max_memory {
            Some(b) => Budget::new(b, format!("--max-memory {}", human(b))),
            None => Budget::default_for_this_process(),
        }
    }

    /// No limit (for library callers that bound nothing, e.g. the parsers' own tests); sizes
    /// that overflow are still refused.
    pub fn unlimited() -> Budget {
        Budget::new(u64::MAX, "no limit")
    }

    /// The default: a share of the smallest memory limit this process lives under.
    pub fn default_for_this_process() -> Budget {
        let mut best: Option<(u64, String)> = None;
        let mut consider = |bytes: Option<u64>, what: &str| {
            if let Some(b) = bytes
                && best.as_ref().is_none_or(|(l, _)| b < *l)
            {
                best = Some((b, format!("{} {what}", human(b))));
            }
        };
        consider(meminfo_total(), "of physical memory");
        consider(cgroup_max(), "cgroup memory.max");
        consider(rlimit_left(Rlimit::As), "left under RLIMIT_AS");
        consider(rlimit_left(Rlimit::Data), "left under RLIMIT_DATA");
        match best {
            Some((b, what)) => Budget::new(
                b / SHARE_DEN * SHARE_NUM,
                format!("default: {SHARE_NUM}/{SHARE_DEN} of the {what}; --max-memory changes it"),
            ),
            None => Budget::new(FALLBACK, "default: 4 GiB; --max-memory changes it"),
        }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes charged so far.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Charges `bytes` (`None`: the computation overflowed) for `what`, which names the setting,
    /// file or value the size comes from (`"--batch 100"`, `"train-images-idx3-ubyte: 60000
    /// images of 28×28"`). Refused, with nothing charged, if the total would exceed the limit.
    pub fn charge(&mut self, what: &str, bytes: Option<u64>) -> Result<(), OverBudget> {
        let Some(b) = bytes else {
            return Err(OverBudget(format!(
                "{what}: the memory it needs overflows 64 bits (more than {} bytes); memory budget {} ({})",
                u64::MAX,
                human(self.limit),
                self.source
            )));
        };
        match self.used.checked_add(b) {
            Some(total) if total <= self.limit => {
                self.used = total;
                Ok(())
            }
            total => {
                let all = match total {
                    Some(t) if self.used > 0 => format!(", {} in all", bytes_and_human(t)),
                    None => " (over 2^64 in all)".to_string(),
                    _ => String::new(),
                };
                Err(OverBudget(format!(
                    "{what}: needs {}{all}, over the memory budget of {} ({})",
                    bytes_and_human(b),
                    bytes_and_human(self.limit),
                    self.source
                )))
            }
        }
    }

    /// Returns `bytes` to the budget (a buffer that was charged and has been freed).
    pub fn release(&mut self, bytes: u64) {
        self.used = self.used.saturating_sub(bytes);
    }
}

/// Reads a file of `len` bytes (its size, as charged), refusing one that holds more (a file that
/// grew, or a device such as `/dev/zero` whose size says 0) instead of reading without end.
pub fn read_at_most(path: &std::path::Path, len: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut v = Vec::new();
    v.try_reserve_exact(usize::try_from(len).unwrap_or(usize::MAX)).map_err(std::io::Error::other)?;
    std::fs::File::open(path)?.take(len.saturating_add(1)).read_to_end(&mut v)?;
    if v.len() as u64 > len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("holds more than the {len} bytes its size says (not a regular file?)"),
        ));
    }
    Ok(v)
}

/// Checked `count × size_of::<T>()` in bytes.
pub fn of<T>(count: usize) -> Option<u64> {
    (count as u64).checked_mul(size_of::<T>() as u64)
}

/// Checked sum of sizes (`None` if any is `None` or the sum overflows).
pub fn sum(parts: &[Option<u64>]) -> Option<u64> {
    parts.iter().try_fold(0u64, |acc, p| acc.checked_add((*p)?))
}

/// Checked product of counts.
pub fn product(counts: &[usize]) -> Option<usize> {
    counts.iter().try_fold(1usize, |acc, &c| acc.checked_mul(c))
}

/// `123456789 bytes (118 MiB)`.
pub fn bytes_and_human(b: u64) -> String {
    format!("{b} bytes ({})", human(b))
}

/// Bytes in binary units with one decimal: `512 B`, `1.5 KiB`, `118.0 MiB`, `4.0 GiB`.
pub fn human(b: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// Parses a size: plain bytes (`1048576`) or a number with a binary unit `K`, `M`, `G`, `T`
/// (optionally followed by `i`, `B` or `iB`, any case: `512M`, `4GiB`, `1.5G`). At least 1 byte.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let lower = unit.to_ascii_lowercase();
    let base = lower.strip_suffix('b').unwrap_or(&lower);
    let base = base.strip_suffix('i').unwrap_or(base);
    let shift = match base {
        "" if lower.is_empty() || lower == "b" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use bytes or K, M, G, T (e.g. 512M, 4G)")),
    };
    let bytes = if num.contains('.') {
        let v: f64 = num.parse().map_err(|_| format!("{s:?} is not a size (e.g. 512M, 4G, 1048576)"))?;
        let b = v * (1u64 << shift) as f64;
        if !(b.is_finite() && b < u64::MAX as f64) {
            return Err(format!("{s:?} is too large"));
        }
        b.floor() as u64
    } else {
        let v: u64 = num.parse().map_err(|_| format!("{s:?} is not a size (e.g. 512M, 4G, 1048576)"))?;
        v.checked_mul(1u64 << shift).ok_or_else(|| format!("{s:?} is too large"))?
    };
    if bytes == 0 {
        return Err(format!("{s:?}: the memory budget must be at least 1 byte"));
    }
    Ok(bytes)
}

fn meminfo_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo_field(&text, "MemTotal:")
}

/// A `kB` field of `/proc/meminfo` or `/proc/self/status`, in bytes.
fn meminfo_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
    kb.checked_mul(1024)
}

/// The cgroup v2 `memory.max` of this process (or v1 `memory.limit_in_bytes`), if limited.
fn cgroup_max() -> Option<u64> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let v2 = cg.lines().find_map(|l| l.strip_prefix("0::")).map(|p| {
        let p = p.trim().trim_start_matches('/');
        std::path::Path::new("/sys/fs/cgroup").join(p).join("memory.max")
    });
    let v1 = std::path::PathBuf::from("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    v2.into_iter().chain([v1]).find_map(|f| parse_cgroup_limit(&std::fs::read_to_string(f).ok()?))
}

/// `max` (no limit) or a byte count; v1 writes a huge number for "no limit".
fn parse_cgroup_limit(text: &str) -> Option<u64> {
    let v: u64 = text.trim().parse().ok()?;
    (v < 1 << 60).then_some(v)
}

#[derive(Clone, Copy)]
enum Rlimit {
    As,
    Data,
}

/// What is left under a resource limit: the soft limit minus what the process already has
/// mapped (`VmSize` for the address space, `VmData` for the data segment).
#[allow(unsafe_code)] // `getrlimit`: libc has no safe wrapper.
fn rlimit_left(which: Rlimit) -> Option<u64> {
    let (res, key) = match which {
        Rlimit::As => (libc::RLIMIT_AS, "VmSize:"),
        Rlimit::Data => (libc::RLIMIT_DATA, "VmData:"),
    };
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `getrlimit` writes one `rlimit` into the valid, exclusively borrowed `lim`.
    if unsafe { libc::getrlimit(res, &mut lim) } != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let have = meminfo_field(&status, key).unwrap_or(0);
    Some(lim.rlim_cur.saturating_sub(have))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("4gb"), Ok(4 << 30));
        assert_eq!(parse_size("1.5K"), Ok(1536));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(parse_size("100B"), Ok(100));
        for bad in ["", "0", "0M", "M", "-1", "4X", "1.2.3G", "99999999999999999999", "16777216T", "1e9"] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn charges_add_up_and_refusals_name_what_and_leave_the_total() {
        let mut b = Budget::new(1000, "--max-memory 1000");
        b.charge("a", Some(600)).unwrap();
        let e = b.charge("--batch 7", Some(401)).unwrap_err().0;
        assert!(e.starts_with("--batch 7: needs 401 bytes (401 B), 1001 bytes"), "{e}");
        assert!(e.contains("over the memory budget of 1000 bytes") && e.contains("--max-memory 1000"), "{e}");
        assert_eq!(b.used(), 600, "a refused charge is not counted");
        b.charge("b", Some(400)).unwrap();
        assert_eq!(b.used(), 1000);
        b.release(500);
        assert_eq!(b.used(), 500);
        let e = b.charge("--layers 1,2", None).unwrap_err().0;
        assert!(e.contains("--layers 1,2") && e.contains("overflows"), "{e}");
        let e = b.charge("x", Some(u64::MAX)).unwrap_err().0;
        assert!(e.contains("over 2^64"), "{e}");
        assert!(!e.contains('\n'));
        let mut u = Budget::unlimited();
        u.charge("huge", Some(u64::MAX / 2)).unwrap();
    }

    #[test]
    fn checked_helpers() {
        assert_eq!(of::<f32>(10), Some(40));
        assert_eq!(of::<f32>(usize::MAX), None);
        assert_eq!(sum(&[Some(1), Some(2)]), Some(3));
        assert_eq!(sum(&[Some(1), None]), None);
        assert_eq!(sum(&[Some(u64::MAX), Some(1)]), None);
        assert_eq!(product(&[60_000, 28, 28]), Some(47_040_000));
        assert_eq!(product(&[usize::MAX, 2]), None);
        assert_eq!(human(512), "512 B");
        assert_eq!(human(47_040_000), "44.9 MiB");
        assert_eq!(human(4 << 30), "4.0 GiB");
    }

    #[test]
    fn limits_are_read() {
        assert_eq!(meminfo_field("MemTotal:       16314980 kB\n", "MemTotal:"), Some(16_314_980 * 1024));
        assert_eq!(meminfo_field("VmSize:\t  10 kB\n", "VmData:"), None);
        assert_eq!(parse_cgroup_limit("max\n"), None);
        assert_eq!(parse_cgroup_limit("536870912\n"), Some(512 << 20));
        assert_eq!(parse_cgroup_limit("9223372036854771712\n"), None);
        // On Linux the default is a share of something real, never zero.
        let d = Budget::default_for_this_process();
        assert!(d.limit() > 0 && d.limit() < u64::MAX, "{d:?}");
    }

    #[test]
    fn the_default_respects_an_address_space_limit() {
        // Under RLIMIT_AS the default must fit in what is left of it.
        if let Some(left) = rlimit_left(Rlimit::As) {
            assert!(Budget::default_for_this_process().limit() <= left);
        }
    }
}
