//! Slurm's compressed host lists (`SLURM_JOB_NODELIST`), expanded as `scontrol show
//! hostnames` expands them.

/// The most hosts a node list may name: far more than any job has, and a bound on what a
/// hostile environment can make the expansion allocate.
pub const MAX_HOSTS: usize = 1 << 16;

/// Expands Slurm's compressed host lists as `scontrol show hostnames` does:
/// `node[01-03,07],gpu5` → node01 node02 node03 node07 gpu5, and several bracket groups in
/// one name, `rack[1-2]-n[1-2]` → rack1-n1 rack1-n2 rack2-n1 rack2-n2.
pub fn expand_nodelist(list: &str) -> Result<Vec<String>, String> {
    let mut hosts = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        // The next host group ends at a comma outside brackets.
        let mut depth = 0;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '[' => depth += 1,
                    ']' => depth -= 1,
                    _ => {}
                }
                c == ',' && depth == 0
            })
            .map_or(rest.len(), |(i, _)| i);
        let group = &rest[..end];
        rest = rest[end..].trim_start_matches(',');
        let left = MAX_HOSTS - hosts.len();
        hosts.extend(expand_group(group, left)?);
    }
    Ok(hosts)
}

/// The hosts of one group (`rack[1-2]-n[01-02]`), at most `limit` of them.
fn expand_group(group: &str, limit: usize) -> Result<Vec<String>, String> {
    let Some(open) = group.find('[') else {
        if group.contains(']') {
            return Err(format!("'{group}': unbalanced brackets"));
        }
        return Ok(vec![group.to_string()]);
    };
    let close = (group[open..].find(']').map(|i| open + i))
        .ok_or_else(|| format!("'{group}': unbalanced brackets"))?;
    let (prefix, ranges) = (&group[..open], &group[open + 1..close]);
    if prefix.contains(']') || ranges.contains('[') {
        return Err(format!("'{group}': unbalanced brackets"));
    }
    let tails = expand_group(&group[close + 1..], limit)?;
    let too_many = || format!("'{group}' names more than {MAX_HOSTS} hosts");
    let mut out = Vec::new();
    for range in ranges.split(',') {
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        let width = lo.len();
        let parse =
            |s: &str| (s.parse::<u64>()).map_err(|_| format!("'{group}': '{s}' is not a number"));
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if hi < lo {
            return Err(format!("'{group}': the range {range} runs backwards"));
        }
        let count = (hi - lo)
            .checked_add(1)
            .and_then(|n| usize::try_from(n).ok());
        let total = count.and_then(|n| n.checked_mul(tails.len()));
        if total.is_none_or(|t| t > limit.saturating_sub(out.len())) {
            return Err(too_many());
        }
        for n in lo..=hi {
            for tail in &tails {
                out.push(format!("{prefix}{n:0width$}{tail}"));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lists_expand_as_scontrol_show_hostnames_does() {
        let hosts = |list: &str| expand_nodelist(list).unwrap();
        assert_eq!(
            hosts("node[01-03,07],gpu5"),
            ["node01", "node02", "node03", "node07", "gpu5"]
        );
        assert_eq!(
            hosts("rack[1-2]-n[1-2]"),
            ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]
        );
        assert_eq!(hosts("a[9-10]x,b"), ["a9x", "a10x", "b"]);
        assert_eq!(hosts("n[008-010]"), ["n008", "n009", "n010"]);
        assert!(hosts("").is_empty());
        for (bad, why) in [
            ("n[1-3", "unbalanced"),
            ("n1-3]", "unbalanced"),
            ("n[3-1]", "runs backwards"),
            ("n[a-b]", "not a number"),
            ("n[0-99999999999999]", "more than 65536 hosts"),
            ("r[0-999]-n[0-999]", "more than 65536 hosts"),
        ] {
            let e = expand_nodelist(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
