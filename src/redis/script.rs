//! The Lua script that runs one check inside Redis, and the reading of its reply.
//!
//! One `EVALSHA` per check (the script is sent with `EVAL` only when the server does not have it
//! cached yet, through [`redis::Script`]). The script reads the server's clock with `TIME`, so
//! every node shares one clock whatever its own says; Redis 5 and later replicate scripts by
//! their effects, which is what makes `TIME` allowed before a write.
//!
//! The bucket is stored as the string `"t:d"` (see [`units`](super::units)), written with `SET`
//! and a `PX` expiry of the time until the bucket is full again, rounded up and at least 1 ms:
//! once the key expires, the bucket it held was full, which is what a missing key means. Numbers
//! are written with `%.0f`, since Lua's default conversion keeps only 14 digits.

use redis::Value;

use super::units::{Units, EXACT};

/// Arguments: `KEYS[1]` the bucket; `ARGV` units per microsecond, units per token, capacity in
/// units, the elapsed-time cap in microseconds, the tokens the request costs, the tokens to take
/// if there are that many (a lease; equal to the cost otherwise).
///
/// Reply: `{allowed, granted, d}`: 1 or 0; the tokens taken; the bucket's TAT minus now in
/// units, after the request when allowed, as found when refused. A refusal writes nothing.
pub(crate) const SOURCE: &str = r#"
local per_us = tonumber(ARGV[1])
local per_token = tonumber(ARGV[2])
local tau = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local cost = tonumber(ARGV[5])
local want = tonumber(ARGV[6])

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

local d = 0
local raw = redis.call('GET', KEYS[1])
if raw then
  local st, sd = string.match(raw, '^(%d+):(%d+)$')
  if not st or #st > 16 or #sd > 16 then
    return redis.error_reply('hotlimit: malformed bucket state')
  end
  local t = tonumber(st)
  d = tonumber(sd)
  -- A write from a later clock reading: stand still until the clock gets there.
  if t > now then now = t end
  local elapsed = now - t
  if elapsed > cap then elapsed = cap end
  d = d - elapsed * per_us
  if d < 0 then d = 0 end
end

if d + cost * per_token > tau then
  return {0, 0, d}
end

local granted = math.floor((tau - d) / per_token)
if granted > want then granted = want end
local nd = d + granted * per_token
if granted > 0 then
  local ttl = math.ceil(nd / (per_us * 1000))
  if ttl < 1 then ttl = 1 end
  redis.call('SET', KEYS[1], string.format('%.0f:%.0f', now, nd),
    'PX', string.format('%.0f', ttl))
end
return {1, granted, nd}
"#;

/// What the script decided, checked against what it may answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Admitted: `granted` tokens taken, the bucket `d` units ahead of now.
    Allowed { granted: u64, d: u64 },
    /// Refused with the bucket `d` units ahead of now.
    Denied { d: u64 },
}

/// Reads the script's reply to a request of `cost` tokens that asked for up to `want`.
///
/// Anything the script cannot have answered is an error, so that a foreign script under the
/// same hash or a confused proxy never turns into a wrong decision or a panic.
pub(crate) fn parse(value: &Value, units: Units, cost: u64, want: u64) -> Result<Reply, String> {
    let items = match value {
        Value::Array(items) if items.len() == 3 => items,
        other => return Err(format!("expected three integers, got {other:?}")),
    };
    let mut numbers = [0u64; 3];
    for (slot, item) in numbers.iter_mut().zip(items) {
        *slot = match item {
            Value::Int(n) if *n >= 0 && (*n as u128) < EXACT => *n as u64,
            other => {
                return Err(format!(
                    "expected a small non-negative integer, got {other:?}"
                ))
            }
        };
    }
    let [allowed, granted, d] = numbers;
    let over = u128::from(d) + u128::from(cost) * u128::from(units.per_token);

    match allowed {
        1 if granted >= cost && granted <= want && d <= units.tau => {
            Ok(Reply::Allowed { granted, d })
        }
        0 if granted == 0 && over > u128::from(units.tau) => Ok(Reply::Denied { d }),
        _ => Err(format!(
            "reply {allowed}, {granted}, {d} does not fit a request of {cost} (up to {want})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quota;

    fn units() -> Units {
        Units::new(Quota::per_second(10).unwrap()).unwrap()
    }

    #[test]
    fn reads_well_formed_replies() {
        let ok = Value::Array(vec![Value::Int(1), Value::Int(3), Value::Int(300_000)]);
        assert_eq!(
            parse(&ok, units(), 2, 3),
            Ok(Reply::Allowed {
                granted: 3,
                d: 300_000
            })
        );
        let no = Value::Array(vec![Value::Int(0), Value::Int(0), Value::Int(950_000)]);
        assert_eq!(parse(&no, units(), 1, 1), Ok(Reply::Denied { d: 950_000 }));
    }

    #[test]
    fn rejects_replies_the_script_cannot_give() {
        let bad = [
            Value::Nil,
            Value::Okay,
            Value::Int(1),
            Value::Array(vec![Value::Int(1), Value::Int(1)]),
            Value::Array(vec![Value::Int(1), Value::Int(1), Value::Int(-1)]),
            Value::Array(vec![Value::Int(1), Value::Int(1), Value::Int(i64::MAX)]),
            Value::Array(vec![Value::Int(2), Value::Int(1), Value::Int(0)]),
            // Allowed but granted less than the cost, or more than asked.
            Value::Array(vec![Value::Int(1), Value::Int(0), Value::Int(0)]),
            Value::Array(vec![Value::Int(1), Value::Int(9), Value::Int(0)]),
            // Past capacity.
            Value::Array(vec![Value::Int(1), Value::Int(1), Value::Int(2_000_000)]),
            // Denied although the request fits: its retry hint would underflow.
            Value::Array(vec![Value::Int(0), Value::Int(0), Value::Int(0)]),
            Value::Array(vec![Value::Int(1), Value::Nil, Value::Int(0)]),
        ];
        for value in bad {
            assert!(parse(&value, units(), 1, 2).is_err(), "{value:?}");
        }
    }
}
