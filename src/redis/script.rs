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
  if t > 9007199254740991 or d > 9007199254740991 then
    return redis.error_reply('hotlimit: malformed bucket state')
  end
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
#[path = "../../tests/support/redis_server.rs"]
mod redis_server;

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

/// The real script on a real server, with its clock swapped for one the test drives (only
/// here: the library itself never sends a time), against the step written in Rust, which the
/// `units` tests hold to the in-process bucket.
#[cfg(test)]
mod against_redis {
    use super::redis_server::start_or_skip;
    use super::*;
    use crate::redis::units::step;
    use crate::Quota;
    use core::time::Duration;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    #[test]
    fn script_decides_as_the_rust_step_on_a_driven_clock() {
        let Some(server) = start_or_skip("script_decides_as_the_rust_step") else {
            return;
        };
        let clock = "local clock = redis.call('TIME')";
        assert!(SOURCE.contains(clock));
        // The key's expiry runs on the server's real clock, not the driven one: push it an
        // hour out, and check below that it is the expected one plus that hour.
        let expiry = "'PX', string.format('%.0f', ttl)";
        assert!(SOURCE.contains(expiry));
        let source = SOURCE
            .replace(clock, "local clock = {ARGV[7], ARGV[8]}")
            .replace(expiry, "'PX', string.format('%.0f', ttl + 3600000)");
        let script = redis::Script::new(&source);
        let mut conn = redis::Client::open(server.url())
            .unwrap()
            .get_connection()
            .unwrap();

        let mut rng = StdRng::seed_from_u64(0x5eed);
        for round in 0..150 {
            let count = rng.random_range(1..=1000u64);
            let period = Duration::from_nanos(rng.random_range(count..=count * 3_000_000));
            let burst = rng.random_range(1..=50u64);
            let quota = Quota::new(count, period)
                .unwrap()
                .with_burst(burst)
                .unwrap();
            let units = Units::new(quota).unwrap();
            let key = format!("round-{round}");
            let interval_us = (period.as_micros() as u64 / count).max(1);

            let (mut state, mut now) = (None, 1_800_000_000_000_000u64);
            for _ in 0..60 {
                // Mostly forward, now and then a step back that must change nothing.
                if rng.random_ratio(1, 10) {
                    now -= rng.random_range(0..=interval_us);
                } else {
                    now += rng.random_range(0..=3 * interval_us);
                }
                let cost = rng.random_range(0..=burst.min(3));
                let want = rng.random_range(cost..=burst);

                let value: Value = script
                    .key(&key)
                    .arg(units.per_us)
                    .arg(units.per_token)
                    .arg(units.tau)
                    .arg(units.cap_us)
                    .arg(cost)
                    .arg(want)
                    .arg(now / 1_000_000)
                    .arg(now % 1_000_000)
                    .invoke(&mut conn)
                    .unwrap();
                let (ok, granted, d, next) = step(units, state, now, cost, want);
                let expected = if ok {
                    Reply::Allowed { granted, d }
                } else {
                    Reply::Denied { d }
                };
                assert_eq!(
                    parse(&value, units, cost, want),
                    Ok(expected),
                    "{quota:?} at {now}"
                );
                state = next;

                let stored: Option<String> = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
                let expected = state.map(|(t, d)| format!("{t}:{d}"));
                assert_eq!(stored, expected, "{quota:?} at {now}");

                if ok && granted > 0 {
                    let pttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
                    let ttl = d.div_ceil(units.per_us * 1000).max(1) as i64 + 3_600_000;
                    assert!(
                        pttl <= ttl && pttl > ttl - 1000,
                        "PTTL {pttl}, expected {ttl}"
                    );
                }
            }
        }
    }
}
