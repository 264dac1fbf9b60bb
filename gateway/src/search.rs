//! Event search (`GET /v1/events?query=&city=&from=&to=&page=&per_page=`): checking and
//! normalizing the parameters, and a short in-process cache of result pages.
//!
//! The text goes to PostgreSQL only as a bound parameter: the database's own parser splits
//! it into words exactly as it split the stored documents (`inventory::search_events`),
//! and each word becomes a quoted prefix term, so no tsquery syntax from the user ever
//! reaches `to_tsquery`. Here the text is only bounded (characters, words), stripped of
//! control characters (PostgreSQL refuses NUL) and lowercased, so equal searches share
//! one cache entry.
//!
//! Browsing must survive an on-sale: each distinct search is answered from PostgreSQL at
//! most once per `CACHE_TTL` (one query at a time per search; the others wait for its
//! answer), and the cache holds at most `CACHE_ENTRIES` searches.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use seatq_common::http::error::{AppError, AppResult};

/// Longest search text, in characters (after collapsing whitespace).
pub const MAX_QUERY_CHARS: usize = 200;
/// Most words in a search text.
pub const MAX_QUERY_WORDS: usize = 10;
/// Longest `city`; a venue's city is at most 100 characters.
pub const MAX_CITY_CHARS: usize = 100;
pub const MAX_PAGE: u32 = 100_000;
pub const DEFAULT_PER_PAGE: u32 = 20;
pub const MAX_PER_PAGE: u32 = 100;
/// How long a result page is served from memory.
pub const CACHE_TTL: Duration = Duration::from_secs(1);
/// How many distinct searches are kept (a page is at most ~40 KB of JSON).
pub const CACHE_ENTRIES: usize = 256;

/// A checked, normalized search: also the cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventSearch {
    /// Lowercased words separated by single spaces; `None` lists every event.
    pub query: Option<String>,
    /// Lowercased; matched case-insensitively and exactly.
    pub city: Option<String>,
    /// Events starting at or after this.
    pub from: Option<DateTime<Utc>>,
    /// Events starting at or before this.
    pub to: Option<DateTime<Utc>>,
    pub page: u32,
    pub per_page: u32,
}

/// The parameters as they arrived.
#[derive(Debug, Default)]
pub struct RawSearch<'a> {
    pub query: Option<&'a str>,
    pub city: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

fn invalid(param: &'static str, detail: impl Into<String>) -> AppError {
    AppError::bad_request("invalid_query", detail).with("param", param)
}

fn query_too_long() -> AppError {
    AppError::bad_request(
        "query_too_long",
        format!("query may have at most {MAX_QUERY_WORDS} words and {MAX_QUERY_CHARS} characters"),
    )
    .with("param", "query")
}

/// Words are what whitespace and control characters separate. The bounds are on the text
/// as sent, which is what the API document's `maxLength` and pattern can state.
fn normalize_query(raw: &str) -> AppResult<Option<String>> {
    if raw.chars().count() > MAX_QUERY_CHARS {
        return Err(query_too_long());
    }
    let cleaned: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    if words.is_empty() {
        return Ok(None);
    }
    if words.len() > MAX_QUERY_WORDS {
        return Err(query_too_long());
    }
    Ok(Some(words.join(" ").to_lowercase()))
}

fn normalize_city(raw: &str) -> AppResult<Option<String>> {
    if raw.chars().count() > MAX_CITY_CHARS || raw.chars().any(char::is_control) {
        return Err(invalid(
            "city",
            format!("city must be at most {MAX_CITY_CHARS} characters without control characters"),
        ));
    }
    let city = raw.trim();
    if city.is_empty() {
        return Ok(None);
    }
    Ok(Some(city.to_lowercase()))
}

/// An RFC 3339 time with a `T` between date and time (`format: date-time`); empty is
/// not a time either.
fn parse_time(param: &'static str, raw: &str) -> AppResult<DateTime<Utc>> {
    let separated = matches!(raw.as_bytes().get(10), Some(b'T' | b't'));
    separated
        .then(|| DateTime::parse_from_rfc3339(raw).ok())
        .flatten()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| {
            invalid(
                param,
                format!(
                    "{param} must be an RFC 3339 time such as 2030-06-01T20:00:00Z \
                     (write a + offset as %2B in a URL)"
                ),
            )
        })
}

impl EventSearch {
    /// Check the parameters (400 `invalid_query` or `query_too_long` with `param`).
    pub fn parse(raw: &RawSearch<'_>) -> AppResult<Self> {
        let page = raw.page.unwrap_or(1);
        if page == 0 || page > MAX_PAGE {
            return Err(invalid("page", format!("page must be 1 to {MAX_PAGE}")));
        }
        let per_page = raw.per_page.unwrap_or(DEFAULT_PER_PAGE);
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(invalid(
                "per_page",
                format!("per_page must be 1 to {MAX_PER_PAGE}"),
            ));
        }
        let query = raw.query.map(normalize_query).transpose()?.flatten();
        let city = raw.city.map(normalize_city).transpose()?.flatten();
        let from = raw.from.map(|s| parse_time("from", s)).transpose()?;
        // `to` before `from` is a window no event starts in: an empty page, not an error
        // (the document cannot say one parameter must not precede another).
        let to = raw.to.map(|s| parse_time("to", s)).transpose()?;
        Ok(Self {
            query,
            city,
            from,
            to,
            page,
            per_page,
        })
    }

    pub fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.per_page)
    }
}

struct Slot {
    created: Instant,
    /// The serialized page and when it was read; empty while the first reader queries.
    page: tokio::sync::OnceCell<(Instant, Bytes)>,
}

impl Slot {
    /// Answered within the TTL, or still being answered (wait for it).
    fn usable(&self, ttl: Duration) -> bool {
        self.page.get().is_none_or(|(at, _)| at.elapsed() < ttl)
    }
}

/// Result pages by search, each read from PostgreSQL at most once per TTL.
pub struct SearchCache {
    ttl: Duration,
    capacity: usize,
    slots: Mutex<HashMap<EventSearch, Arc<Slot>>>,
}

impl Default for SearchCache {
    fn default() -> Self {
        Self::new(CACHE_TTL, CACHE_ENTRIES)
    }
}

impl SearchCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            slots: Mutex::default(),
        }
    }

    /// Searches held now (fresh or not).
    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&self, key: &EventSearch) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = slots.get(key).filter(|s| s.usable(self.ttl)) {
            return slot.clone();
        }
        if slots.len() >= self.capacity && !slots.contains_key(key) {
            slots.retain(|_, s| s.usable(self.ttl));
            while slots.len() >= self.capacity {
                let oldest = slots
                    .iter()
                    .min_by_key(|(_, s)| s.created)
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => slots.remove(&k),
                    None => break,
                };
            }
        }
        let slot = Arc::new(Slot {
            created: Instant::now(),
            page: tokio::sync::OnceCell::new(),
        });
        slots.insert(key.clone(), slot.clone());
        slot
    }

    /// The cached page if fresh, else `build` it: one builder per search at a time, the
    /// others wait for its answer (and retry themselves if it failed).
    pub async fn get_or_build<F, Fut, E>(&self, key: &EventSearch, build: F) -> Result<Bytes, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
    {
        let slot = self.slot(key);
        let (_, body) = slot
            .page
            .get_or_try_init(|| async { build().await.map(|body| (Instant::now(), body)) })
            .await?;
        Ok(body.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn parse(query: &str) -> AppResult<EventSearch> {
        EventSearch::parse(&RawSearch {
            query: Some(query),
            ..RawSearch::default()
        })
    }

    #[test]
    fn query_is_normalized_and_bounded() {
        assert_eq!(
            parse("  Queue\tJUMP\u{0}ers \n").unwrap().query.as_deref(),
            Some("queue jump ers")
        );
        assert_eq!(parse("   ").unwrap().query, None);
        assert_eq!(parse("\u{0}\u{7}").unwrap().query, None);
        assert_eq!(
            parse("Björk ÉLAN").unwrap().query.as_deref(),
            Some("björk élan")
        );
        let words = ["w"; MAX_QUERY_WORDS + 1].join(" ");
        assert_eq!(parse(&words).unwrap_err().code, "query_too_long");
        assert_eq!(
            parse(&"x".repeat(MAX_QUERY_CHARS + 1)).unwrap_err().code,
            "query_too_long"
        );
        assert!(parse(&"é".repeat(MAX_QUERY_CHARS)).is_ok());
    }

    #[test]
    fn bad_values_are_invalid_query() {
        let bad = [
            RawSearch {
                page: Some(0),
                ..RawSearch::default()
            },
            RawSearch {
                per_page: Some(101),
                ..RawSearch::default()
            },
            RawSearch {
                from: Some("yesterday"),
                ..RawSearch::default()
            },
            RawSearch {
                to: Some(""),
                ..RawSearch::default()
            },
            RawSearch {
                from: Some("2030-01-01 00:00:00Z"),
                ..RawSearch::default()
            },
            RawSearch {
                city: Some("a\u{0}b"),
                ..RawSearch::default()
            },
            RawSearch {
                city: Some(&"c".repeat(MAX_CITY_CHARS + 1)),
                ..RawSearch::default()
            },
        ];
        for raw in &bad {
            assert_eq!(EventSearch::parse(raw).unwrap_err().code, "invalid_query");
        }
        let ok = EventSearch::parse(&RawSearch {
            city: Some(" Lisbon "),
            from: Some("2030-01-01T02:00:00+02:00"),
            to: Some("2030-01-01T00:00:00Z"),
            ..RawSearch::default()
        })
        .unwrap();
        assert_eq!(ok.city.as_deref(), Some("lisbon"));
        assert_eq!(ok.from, ok.to);
        assert_eq!((ok.page, ok.per_page), (1, DEFAULT_PER_PAGE));
        // `to` before `from`: a window nothing starts in, not an error.
        assert!(EventSearch::parse(&RawSearch {
            from: Some("2030-01-02T00:00:00Z"),
            to: Some("2030-01-01T00:00:00Z"),
            ..RawSearch::default()
        })
        .is_ok());
    }

    fn key(page: u32) -> EventSearch {
        EventSearch::parse(&RawSearch {
            page: Some(page),
            ..RawSearch::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn one_build_per_ttl_and_bounded() {
        let cache = Arc::new(SearchCache::new(Duration::from_millis(200), 4));
        let builds = Arc::new(AtomicUsize::new(0));
        let build = |builds: Arc<AtomicUsize>| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let n = builds.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(Bytes::from(n.to_string()))
        };
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cache, builds) = (cache.clone(), builds.clone());
            tasks.push(tokio::spawn(async move {
                cache.get_or_build(&key(1), || build(builds)).await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), "0");
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1, "single flight");
        tokio::time::sleep(Duration::from_millis(250)).await;
        let again = cache.get_or_build(&key(1), || build(builds.clone())).await;
        assert_eq!(again.unwrap(), "1", "rebuilt after the TTL");

        // A failed build is not cached.
        let failed = cache
            .get_or_build(&key(2), || async { Err::<Bytes, ()>(()) })
            .await;
        assert!(failed.is_err());
        let ok = cache.get_or_build(&key(2), || build(builds.clone())).await;
        assert_eq!(ok.unwrap(), "2");

        for page in 3..20 {
            cache
                .get_or_build(&key(page), || build(builds.clone()))
                .await
                .unwrap();
            assert!(cache.len() <= 4, "at most 4 entries, got {}", cache.len());
        }
    }
}
