//! The machine a run was measured on, printed with every table.

/// Logical CPUs this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The CPU model name (Linux `/proc/cpuinfo`), if known.
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// The 1, 5 and 15-minute load averages (Linux `/proc/loadavg`), if known.
pub fn load_average() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(raw.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// One line describing the machine.
pub fn describe() -> String {
    format!(
        "machine: {} cores available, CPU {}, load average {}",
        cores(),
        cpu_model().unwrap_or_else(|| "unknown".into()),
        load_average().unwrap_or_else(|| "unknown".into())
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn description_names_the_core_count() {
        let d = super::describe();
        assert!(d.contains(&format!("{} cores", super::cores())), "{d}");
        assert!(super::cores() >= 1);
    }
}
