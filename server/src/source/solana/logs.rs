//! Finding a program's events in a transaction's log messages.
//!
//! Logs interleave every program the transaction invokes. Tracking the invoke stack (`Program X invoke [n]`
//! … `Program X success` / `failed`) tells which program emitted each `Program data:` line; only lines
//! emitted while our program is the one executing are its events (another program could log look-alike
//! data). Their order gives each event's `event_index` within the transaction.

use base64::Engine;

/// The decoded payloads of `program_id`'s `Program data:` lines, in order (an entry is an error when the
/// base64 is bad). Returns an empty list for logs that never invoke the program.
pub fn program_data(logs: &[String], program_id: &str) -> Vec<Result<Vec<u8>, String>> {
    let mut stack: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for line in logs {
        let Some(rest) = line.strip_prefix("Program ") else {
            continue;
        };
        if let Some(data) = rest.strip_prefix("data: ") {
            if stack.last() == Some(&program_id) {
                // `sol_log_data` may log several space-separated fields; Anchor's `emit!` logs one.
                let first = data.split_whitespace().next().unwrap_or("");
                out.push(
                    base64::engine::general_purpose::STANDARD
                        .decode(first)
                        .map_err(|err| format!("bad base64 in `Program data:`: {err}")),
                );
            }
            continue;
        }
        let mut words = rest.split_whitespace();
        let (Some(id), Some(verb)) = (words.next(), words.next()) else {
            continue;
        };
        match verb {
            "invoke" => stack.push(id),
            "success" | "failed:" if stack.last() == Some(&id) => {
                stack.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "JBMmrp6jhksqnxDBskkmVvWHhJLaPBjgiMHEroJbUTBZ";
    const OTHER: &str = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";

    fn logs(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| (*l).to_owned()).collect()
    }

    #[test]
    fn only_lines_emitted_while_the_program_executes_count() {
        let lines = logs(&[
            "Program ComputeBudget111111111111111111111111111111 invoke [1]",
            "Program data: AAAA",
            "Program ComputeBudget111111111111111111111111111111 success",
            &format!("Program {ME} invoke [1]"),
            "Program log: Instruction: Buy",
            &format!("Program {OTHER} invoke [2]"),
            "Program data: BBBB",
            &format!("Program {OTHER} consumed 4645 of 190000 compute units"),
            &format!("Program {OTHER} success"),
            "Program data: AQID",
            "Program data: BAUG",
            &format!("Program {ME} consumed 30000 of 200000 compute units"),
            &format!("Program {ME} success"),
            "Program data: CCCC",
        ]);
        let found = program_data(&lines, ME);
        assert_eq!(found, vec![Ok(vec![1, 2, 3]), Ok(vec![4, 5, 6])]);
    }

    #[test]
    fn bad_base64_is_reported_in_place() {
        let lines = logs(&[
            &format!("Program {ME} invoke [1]"),
            "Program data: !!!",
            &format!("Program {ME} success"),
        ]);
        let found = program_data(&lines, ME);
        assert_eq!(found.len(), 1);
        assert!(found[0].as_ref().unwrap_err().contains("bad base64"));
    }

    #[test]
    fn a_failed_inner_program_pops_the_stack() {
        let lines = logs(&[
            &format!("Program {ME} invoke [1]"),
            &format!("Program {OTHER} invoke [2]"),
            &format!("Program {OTHER} failed: custom program error: 0x1"),
            "Program data: AQID",
            &format!("Program {ME} success"),
        ]);
        assert_eq!(program_data(&lines, ME), vec![Ok(vec![1, 2, 3])]);
    }
}
