//! The seed of a run: `MEMMESH_SIM_SEED` (decimal, or hex with `0x`) replays a run; without
//! it every run draws a fresh seed. Print it, so a failure can be replayed.

/// The variable that replays a run.
pub const SEED_VAR: &str = "MEMMESH_SIM_SEED";

/// Parses a seed (decimal, or hex with `0x`).
pub fn parse(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The seed from `MEMMESH_SIM_SEED`, else a fresh one (from the clock and the process id).
/// An unparsable variable is an error, not silently another seed.
pub fn from_env() -> Result<u64, String> {
    match std::env::var(SEED_VAR) {
        Ok(v) => parse(&v).ok_or_else(|| format!("{SEED_VAR}={v:?} is not a number")),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            Ok(nanos ^ u64::from(std::process::id()).rotate_left(32))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeds_parse() {
        assert_eq!(super::parse("42"), Some(42));
        assert_eq!(super::parse(" 0xff "), Some(255));
        assert_eq!(super::parse("x"), None);
    }
}
