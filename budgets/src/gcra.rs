//! The shared GCRA: one Lua script takes `n` calls from every budget of a draw at once, or none.
//!
//! Each budget is one Redis string: its theoretical arrival time (TAT), microseconds on Redis's
//! own clock (`TIME`, so replicas' clocks never matter), expiring when it is back in the past.
//! The script grants `g = min(n, free calls of each budget)`; if `g > 0` every budget's TAT moves
//! `g` intervals on, else nothing changes and the answer says how long until one call is free on
//! all of them. It also answers the headroom left (the fewest calls still free on any budget),
//! which tells a replica whether it may claim a few calls ahead (`crate::allowance`).

use std::time::Duration;

use redis::{Cmd, RedisResult, Script, Value};

use crate::rate::Rate;

/// KEYS: the budgets. ARGV[1]: calls wanted; then each budget's interval and limit (µs).
/// Answers {granted, wait µs, headroom}.
const SOURCE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local grant = tonumber(ARGV[1])
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local limit = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key) or '0') or 0
  if tat < now then tat = now end
  tats[i] = tat
  local free = math.floor((now + limit - tat) / interval)
  if free < grant then grant = free end
end
if grant <= 0 then
  local wait = 0
  for i = 1, #KEYS do
    local w = tats[i] + tonumber(ARGV[2 * i]) - tonumber(ARGV[2 * i + 1]) - now
    if w > wait then wait = w end
  end
  return {0, math.ceil(wait), 0}
end
local headroom = -1
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local limit = tonumber(ARGV[2 * i + 1])
  local tat = tats[i] + grant * interval
  redis.call('SET', key, string.format('%.2f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
  local left = math.floor((now + limit - tat) / interval)
  if headroom < 0 or left < headroom then headroom = left end
end
return {grant, 0, headroom}
";

/// What the script answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// Calls granted (0: none; then `wait` says when one is free).
    pub granted: u32,
    pub wait: Duration,
    /// Calls still free on the fullest budget after this grant.
    pub headroom: u32,
}

pub struct Gcra {
    script: Script,
}

impl Default for Gcra {
    fn default() -> Self {
        Gcra { script: Script::new(SOURCE) }
    }
}

impl Gcra {
    /// `EVALSHA` taking up to `want` calls from each of `budgets` (Redis keys with their rates),
    /// atomically: a command of its own, so it can ride in one pipeline with the request's other
    /// Redis work; read its answer with [`Gcra::answer`].
    pub fn command(&self, budgets: &[(&str, Rate)], want: u32) -> Cmd {
        let mut command = Cmd::with_capacity(4 + 3 * budgets.len(), 64 * budgets.len() + 64);
        command.arg("EVALSHA").arg(self.script.get_hash()).arg(budgets.len());
        for (key, _) in budgets {
            command.arg(*key);
        }
        command.arg(want.max(1));
        for (_, rate) in budgets {
            command.arg(rate.interval_us()).arg(rate.limit_us());
        }
        command
    }

    /// Loads the script (Redis answered `NOSCRIPT`: it restarted or was flushed).
    pub async fn load(&self, connection: &mut impl redis::aio::ConnectionLike) -> RedisResult<()> {
        self.script.load_async(connection).await.map(drop)
    }

    /// What [`Gcra::command`] answered.
    pub fn answer(value: Value) -> RedisResult<Answer> {
        let (granted, wait_us, headroom): (i64, i64, i64) = redis::from_redis_value(value)?;
        Ok(Answer {
            granted: u32::try_from(granted).unwrap_or(0),
            wait: Duration::from_micros(u64::try_from(wait_us).unwrap_or(0)),
            headroom: u32::try_from(headroom).unwrap_or(0),
        })
    }
}
