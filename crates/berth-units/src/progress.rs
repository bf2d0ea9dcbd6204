//! docker's `jsonmessage.JSONProgress.String()`: the progress bar the daemon
//! sends as `progress` and the CLI draws from `progressDetail`.

use crate::human_size;

/// The bar for `current` of `total` bytes at a terminal `width` (the daemon
/// uses 200, as moby does when it has no terminal). Empty when there is
/// nothing to show, only the size when the total is unknown.
pub fn progress_bar(current: i64, total: i64, width: usize) -> String {
    if current <= 0 && total <= 0 {
        return String::new();
    }
    if total <= 0 {
        return format!("{:>8}", human_size(current as f64));
    }
    let percentage = ((current as f64 / total as f64 * 100.0) as i64 / 2).clamp(0, 50) as usize;
    let mut out = String::new();
    if width > 110 {
        out.push('[');
        out.push_str(&"=".repeat(percentage));
        out.push('>');
        out.push_str(&" ".repeat(50 - percentage));
        out.push_str("] ");
    }
    let cur = human_size(current as f64);
    if current > total {
        // docker drops the total when the reported current is wonky.
        out.push_str(&format!("{cur:>8}"));
    } else {
        out.push_str(&format!("{cur:>8}/{}", human_size(total as f64)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_as_docker_draws_them() {
        assert_eq!(progress_bar(0, 0, 200), "");
        assert_eq!(
            progress_bar(1_100_000, 2_200_000, 200),
            "[=========================>                         ]    1.1MB/2.2MB"
        );
        assert_eq!(
            progress_bar(2_200_000, 2_200_000, 200),
            "[==================================================>]    2.2MB/2.2MB"
        );
        assert_eq!(progress_bar(512, 0, 200), "    512B");
        assert_eq!(progress_bar(1000, 2000, 80), "     1kB/2kB");
    }
}
