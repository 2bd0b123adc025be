//! Latency histograms: HDR, in microseconds, carried in results as base64 of the HDR V2
//! serialization so that merging processes' results is exact.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

use crate::{Error, Result};

/// Highest latency tracked (10 min, in µs); larger values are recorded as this.
pub const MAX_US: u64 = 600_000_000;

/// An empty latency histogram in microseconds, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

/// Base64 of the HDR V2 serialization.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut buf)
        .expect("serializing into a Vec");
    B64.encode(buf)
}

/// The inverse of [`encode`]; an empty string is an empty histogram.
pub fn decode(s: &str) -> Result<Histogram<u64>> {
    let mut h = new_histogram();
    if !s.is_empty() {
        let bytes = B64
            .decode(s)
            .map_err(|e| Error::Histogram(format!("base64: {e}")))?;
        let d: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| Error::Histogram(format!("{e:?}")))?;
        h.add(&d).map_err(|e| Error::Histogram(format!("{e:?}")))?;
    }
    Ok(h)
}

/// The sum of two encoded histograms, encoded.
pub fn merge(a: &str, b: &str) -> Result<String> {
    let mut h = decode(a)?;
    h.add(&decode(b)?)
        .map_err(|e| Error::Histogram(format!("{e:?}")))?;
    Ok(encode(&h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_merge() {
        let mut h = new_histogram();
        h.record(1500).unwrap();
        let a = encode(&h);
        assert_eq!(decode(&a).unwrap().len(), 1);
        assert_eq!(decode(&merge(&a, &a).unwrap()).unwrap().len(), 2);
        assert_eq!(decode("").unwrap().len(), 0);
        assert!(decode("not base64!").is_err());
    }
}
