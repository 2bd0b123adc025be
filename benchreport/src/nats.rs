//! The nats-server's own counters over a window (from `/varz`), so a result says how
//! many NATS messages each like or comment cost.

use serde::{Deserialize, Serialize};

/// The counters of `/varz` that matter here.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsCounts {
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

impl NatsCounts {
    /// What happened between `before` and `self`.
    pub fn since(&self, before: &NatsCounts) -> NatsCounts {
        NatsCounts {
            in_msgs: self.in_msgs.saturating_sub(before.in_msgs),
            out_msgs: self.out_msgs.saturating_sub(before.out_msgs),
            in_bytes: self.in_bytes.saturating_sub(before.in_bytes),
            out_bytes: self.out_bytes.saturating_sub(before.out_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_varz_and_subtracts() {
        let varz = r#"{"server_id":"x","in_msgs":10,"out_msgs":25,"in_bytes":1000,"out_bytes":4000,"connections":3}"#;
        let a: NatsCounts = serde_json::from_str(varz).unwrap();
        let b = NatsCounts {
            in_msgs: 4,
            out_msgs: 5,
            in_bytes: 100,
            out_bytes: 400,
        };
        let d = a.since(&b);
        assert_eq!(
            (d.in_msgs, d.out_msgs, d.in_bytes, d.out_bytes),
            (6, 20, 900, 3600)
        );
    }
}
