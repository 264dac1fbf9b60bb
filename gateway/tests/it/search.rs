//! Event search (`GET /v1/events?query=&city=&from=&to=&page=&per_page=`) against a real
//! PostgreSQL: full-text matches by title, performer, venue and city with word prefixes,
//! ranking, filters, pagination, junk input, and the short cache.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::support::{assert_problem, gateway};
use chrono::{DateTime, SubsecRound, Utc};
use seatq_common::testkit::{eventually, Api, TestEnv};
use serde_json::{json, Value};

struct Organiser<'a> {
    api: &'a Api,
    admin: String,
    base: DateTime<Utc>,
}

impl Organiser<'_> {
    async fn venue(&self, name: &str, city: &str, prices: &[i64]) -> String {
        let sections: Vec<Value> = prices
            .iter()
            .enumerate()
            .map(|(i, p)| {
                json!({"kind": "general_admission", "code": format!("S{i}"),
                       "name": format!("Section {i}"), "capacity": 10, "price_cents": p})
            })
            .collect();
        let (status, venue) = self
            .api
            .post(
                "/v1/admin/venues",
                Some(&self.admin),
                &json!({"name": name, "city": city, "sections": sections}),
            )
            .await;
        assert_eq!(status, 201, "create venue: {venue}");
        venue["id"].as_str().expect("venue id").to_owned()
    }

    /// An event `days` days after the base time; its id (leaked: compared a lot).
    async fn event(&self, venue: &str, title: &str, performer: &str, days: i64) -> &'static str {
        let (status, ev) = self
            .api
            .post(
                "/v1/admin/events",
                Some(&self.admin),
                &json!({
                    "venue_id": venue,
                    "title": title,
                    "performer": performer,
                    "starts_at": self.starts(days).to_rfc3339(),
                    "waiting_room_enabled": false,
                }),
            )
            .await;
        assert_eq!(status, 201, "create event: {ev}");
        ev["id"].as_str().expect("event id").to_owned().leak()
    }

    fn starts(&self, days: i64) -> DateTime<Utc> {
        self.base + chrono::Duration::days(days)
    }
}

/// `/v1/events?…` with the pairs properly encoded.
fn events_url(pairs: &[(&str, &str)]) -> String {
    let url = reqwest::Url::parse_with_params("http://x/v1/events", pairs).expect("url");
    format!("/v1/events?{}", url.query().unwrap_or(""))
}

async fn search(api: &Api, pairs: &[(&str, &str)]) -> Value {
    let (status, body) = api.get(&events_url(pairs), None).await;
    assert_eq!(status, 200, "{pairs:?}: {body}");
    body
}

fn ids(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn found(api: &Api, pairs: &[(&str, &str)]) -> Vec<String> {
    ids(&search(api, pairs).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_ranks_filters_and_paginates() {
    let env = TestEnv::new(1).await;
    let gw = gateway(&env.settings).await;
    let api = &gw.api;
    let org = Organiser {
        admin: api.token("organiser", "admin").await,
        api,
        base: Utc::now().trunc_subsecs(0) + chrono::Duration::days(30),
    };
    let harbour = org.venue("Harbour Hall", "Lisbon", &[4500, 9000]).await;
    let queue_arena = org.venue("Queue Arena", "Porto", &[3000]).await;
    let mill = org.venue("Old Mill", "SÃO PAULO", &[2000]).await;
    let club = org.venue("Night Club", "LISBON", &[1500]).await;
    let filler = org.venue("Filler Venue", "Faro", &[1000]).await;

    let stadium = org
        .event(&harbour, "Stadium Night", "The Queue Jumpers", 10)
        .await;
    let chamber = org
        .event(&queue_arena, "Chamber Evening", "The FIFO Quartet", 5)
        .await;
    let theory = org
        .event(&mill, "Queue Theory Live", "Erlang Band", 20)
        .await;
    let jazz = org.event(&club, "Jazz Brunch", "Björk Ensemble", 30).await;
    let mut fillers = Vec::new();
    for n in 0..25 {
        fillers.push(
            org.event(&filler, &format!("Filler Show {n}"), "", 40 + n)
                .await,
        );
    }

    // Title words, in any order, whole or as prefixes while typing.
    assert_eq!(found(api, &[("query", "stadium night")]).await, [stadium]);
    assert_eq!(found(api, &[("query", "Night Stadium")]).await, [stadium]);
    assert_eq!(found(api, &[("query", "stad")]).await, [stadium]);
    // Performer, prefix of the last word as it is being typed.
    for typed in ["queue jump", "Queue Jumpers", "QUEUE-JUMP", "the queue j"] {
        assert_eq!(found(api, &[("query", typed)]).await, [stadium], "{typed}");
    }
    assert_eq!(found(api, &[("query", "fifo")]).await, [chamber]);
    assert_eq!(found(api, &[("query", "erl")]).await, [theory]);
    // Unicode words, case-insensitively.
    for typed in ["björk", "BJÖRK", "Bjö"] {
        assert_eq!(found(api, &[("query", typed)]).await, [jazz], "{typed}");
    }
    // Venue name and city are searched too.
    assert_eq!(found(api, &[("query", "harbour")]).await, [stadium]);
    assert_eq!(found(api, &[("query", "são")]).await, [theory]);
    assert!(found(api, &[("query", "stadium jazz")]).await.is_empty());
    assert!(found(api, &[("query", "nothing like this")])
        .await
        .is_empty());

    // Ranking: "queue" is in two events' title or performer (weight A) and in one's venue
    // name only (weight B). The venue-only match starts first but ranks last; equal ranks
    // go by start time.
    let queue = search(api, &[("query", "queue")]).await;
    assert_eq!(ids(&queue), [stadium, theory, chamber], "{queue}");
    assert_eq!(queue["total"], 3);

    // City: case-insensitive, exact (not a prefix), combinable with a query.
    let lisbon: HashSet<String> = found(api, &[("city", "lisbon")])
        .await
        .into_iter()
        .collect();
    assert_eq!(lisbon, HashSet::from([stadium.to_owned(), jazz.to_owned()]));
    assert_eq!(
        found(api, &[("city", " LisBon ")]).await,
        [stadium, jazz],
        "by start time"
    );
    assert_eq!(found(api, &[("city", "são paulo")]).await, [theory]);
    assert!(found(api, &[("city", "Lisb")]).await.is_empty());
    assert_eq!(
        found(api, &[("query", "jazz"), ("city", "Lisbon")]).await,
        [jazz]
    );
    assert!(found(api, &[("query", "jazz"), ("city", "Porto")])
        .await
        .is_empty());

    // Date range on starts_at, both bounds inclusive, any RFC 3339 offset.
    let from = org.starts(10).to_rfc3339();
    let to = org
        .starts(20)
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).expect("offset"))
        .to_rfc3339();
    assert!(to.contains("+02:00"), "{to}");
    assert_eq!(
        found(api, &[("from", &from), ("to", &to)]).await,
        [stadium, theory]
    );
    assert_eq!(
        found(api, &[("query", "queue"), ("to", &to)]).await,
        [stadium, theory, chamber]
    );
    assert_eq!(
        found(api, &[("query", "queue"), ("from", &from), ("to", &to)]).await,
        [stadium, theory]
    );
    let late = org.starts(35).to_rfc3339();
    let all_late = search(api, &[("from", &late), ("per_page", "100")]).await;
    assert_eq!(ids(&all_late), fillers, "fillers by start time");

    // Pages: a correct total on every page, even past the last.
    let mut seen = Vec::new();
    for page in 1..=3 {
        let p = search(
            api,
            &[
                ("query", "filler"),
                ("page", &page.to_string()),
                ("per_page", "10"),
            ],
        )
        .await;
        assert_eq!(p["total"], 25, "{p}");
        assert_eq!(p["page"], page);
        assert_eq!(p["per_page"], 10);
        assert_eq!(
            p["events"].as_array().map(Vec::len),
            Some(if page < 3 { 10 } else { 5 })
        );
        seen.extend(ids(&p));
    }
    assert_eq!(seen, fillers, "every filler once, in order");
    let past = search(
        api,
        &[("query", "filler"), ("page", "4"), ("per_page", "10")],
    )
    .await;
    assert_eq!(past["total"], 25, "{past}");
    assert_eq!(past["events"], json!([]));
    // The same without a text query (the count comes from its own query there).
    let mut seen = Vec::new();
    for page in 1..=4 {
        let p = search(
            api,
            &[
                ("city", "faro"),
                ("page", &page.to_string()),
                ("per_page", "10"),
            ],
        )
        .await;
        assert_eq!(p["total"], 25, "{p}");
        seen.extend(ids(&p));
    }
    assert_eq!(seen, fillers, "every filler once, by start time");

    // No query: everything by start time, with price ranges and capacity.
    let everything = search(api, &[("per_page", "100")]).await;
    assert_eq!(everything["total"], 29);
    let mut expected = vec![chamber, stadium, theory, jazz];
    expected.extend(fillers.iter().copied());
    assert_eq!(ids(&everything), expected);
    let first = &search(api, &[("query", "stadium")]).await["events"][0];
    assert_eq!(
        first["price_range"],
        json!({"min_cents": 4500, "max_cents": 9000})
    );
    assert_eq!(first["capacity"], 20);
    assert_eq!(first["venue"]["name"], "Harbour Hall");
    assert_eq!(first["venue"]["city"], "Lisbon");
    assert_eq!(first["performer"], "The Queue Jumpers");
    // A blank query is no query.
    assert_eq!(
        search(api, &[("query", "   "), ("per_page", "100")]).await["total"],
        29
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_input_is_a_400_or_nothing_found_never_a_500() {
    let env = TestEnv::new(1).await;
    let gw = gateway(&env.settings).await;
    let api = &gw.api;
    let org = Organiser {
        admin: api.token("organiser", "admin").await,
        api,
        base: Utc::now().trunc_subsecs(0) + chrono::Duration::days(30),
    };
    let venue = org.venue("Test Arena", "Testville", &[1000]).await;
    let event = org.event(&venue, "Plain Title", "Some Band", 1).await;

    let long_word = "x".repeat(201);
    let many_words = "word ".repeat(11);
    let huge = "q".repeat(5000);
    let max_unicode = "é".repeat(200);
    let junk: Vec<&str> = vec![
        "&",
        "|",
        "!",
        "!!!",
        "a & b",
        "a | b",
        "!plain",
        "(plain",
        "plain)",
        "plain:*",
        ":*",
        "*",
        "'",
        "''",
        "'''",
        "\"",
        "\"plain\"",
        "\\",
        "plain\\",
        "\\'",
        "'plain' & 'title'",
        "<->",
        "plain <-> title",
        "plain <2> title",
        "plain:A",
        "plain:*A",
        "%",
        "_",
        "%_%",
        "--",
        ";",
        "'; DROP TABLE events; --",
        "plain' | 'x",
        "\u{0}",
        "plain\u{0}title",
        "\u{202e}eltit",
        "\u{200b}",
        "🎸🎸",
        "東京ドーム",
        "ÆØÅ æøå",
        "plain\ttitle\n",
        "@",
        "a@b.c",
        "http://x/y",
        "/etc/passwd",
        "1.5",
        "-1",
        "+",
        "Plain-",
        "-plain",
        &long_word,
        &many_words,
        &huge,
        &max_unicode,
    ];
    for q in junk {
        let (status, body) = api.get(&events_url(&[("query", q)]), None).await;
        match status.as_u16() {
            200 => assert!(
                body["events"].is_array() && body["total"].is_i64(),
                "{q:?}: {body}"
            ),
            400 => assert!(
                body["code"] == "query_too_long" || body["code"] == "invalid_query",
                "{q:?}: {body}"
            ),
            other => panic!("{q:?} gave {other}: {body}"),
        }
    }
    // Syntax characters around real words are ignored, not interpreted.
    for q in [
        "!plain",
        "(plain",
        "plain:*",
        "'plain' & 'title'",
        "plain <-> title",
        "\"plain\"",
    ] {
        assert_eq!(found(api, &[("query", q)]).await, [event], "{q:?}");
    }
    assert!(found(api, &[("query", "plain' | 'x")]).await.is_empty());
    assert_eq!(found(api, &[("query", "plain\u{0}title")]).await, [event]);
    assert_problem(
        &api.get(&events_url(&[("query", &long_word)]), None).await,
        400,
        "query_too_long",
    );
    assert_problem(
        &api.get(&events_url(&[("query", &many_words)]), None).await,
        400,
        "query_too_long",
    );
    assert_problem(
        &api.get(&events_url(&[("query", &huge)]), None).await,
        400,
        "query_too_long",
    );

    // Raw bytes that are not UTF-8, NUL and stray percent signs in the query string.
    for raw in [
        "query=%FF%FE",
        "query=%00",
        "query=%",
        "query=%zz",
        "city=%00",
        "city=%FF",
    ] {
        let (status, body) = api.get(&format!("/v1/events?{raw}"), None).await;
        assert!(status == 200 || status == 400, "{raw}: {status} {body}");
    }
    for (param, value) in [
        ("city", "' OR 1=1 --"),
        ("city", "東京"),
        ("city", "x\u{0}y"),
        ("city", &"c".repeat(101)),
        ("from", "'; --"),
        ("from", "2030-13-45T00:00:00Z"),
        ("from", "0000-01-01T00:00:00Z"),
        ("to", "9999-12-31T23:59:59Z"),
        ("to", "2030-01-01T00:00:00 02:00"),
        ("from", "2030-01-01"),
    ] {
        let (status, body) = api.get(&events_url(&[(param, value)]), None).await;
        assert!(
            status == 200 || status == 400,
            "{param}={value:?}: {status} {body}"
        );
        if status == 400 {
            assert_eq!(body["code"], "invalid_query", "{body}");
            assert_eq!(body["param"], param, "{body}");
        }
    }

    // Unknown or repeated parameters and bad values: 400 invalid_query.
    for path in [
        "/v1/events?q=plain",
        "/v1/events?sort=asc",
        "/v1/events?query=a&query=b",
        "/v1/events?per_page=0",
        "/v1/events?per_page=101",
        "/v1/events?page=0",
        "/v1/events?page=-1",
        "/v1/events?page=abc",
        "/v1/events?from=yesterday",
        "/v1/events?to=",
        "/v1/events?from=",
    ] {
        assert_problem(&api.get(path, None).await, 400, "invalid_query");
    }
    // `to` before `from` is a window no event starts in: an empty page.
    let (status, body) = api
        .get(
            "/v1/events?from=2030-02-01T00:00:00Z&to=2030-01-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"], json!([]), "{body}");
    let (_, body) = api.get("/v1/events?per_page=101", None).await;
    assert_eq!(body["param"], "per_page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_cached_briefly_and_events_from_any_writer_are_searchable() {
    let env = TestEnv::new(1).await;
    let gw = gateway(&env.settings).await;
    let api = &gw.api;
    let org = Organiser {
        admin: api.token("organiser", "admin").await,
        api,
        base: Utc::now().trunc_subsecs(0) + chrono::Duration::days(30),
    };
    let venue = org.venue("Cache Hall", "Braga", &[1000]).await;
    let first = org.event(&venue, "Encore Night", "", 1).await;

    let asked = Instant::now();
    assert_eq!(found(api, &[("query", "encore")]).await, [first]);
    let second = org.event(&venue, "Encore Night II", "", 2).await;
    let again = found(api, &[("query", "Encore  ")]).await;
    if asked.elapsed() < Duration::from_millis(900) {
        assert_eq!(
            again,
            [first],
            "the same normalized search within the TTL is cached"
        );
    }
    eventually("the new event is found", Duration::from_secs(5), || async {
        let now = found(api, &[("query", "encore")]).await;
        (now == [first, second]).then_some(())
    })
    .await;

    // An event row written without its search document (an older gateway during a
    // rolling deploy) gets one from the trigger.
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO events (id, venue_id, title, performer, starts_at, on_sale_at, \
         kafka_partition) VALUES ($1, $2::uuid, 'Legacy Writer Gala', 'Old Binary', \
         now() + interval '90 days', now(), 0)",
    )
    .bind(id)
    .bind(&venue)
    .execute(&env.pool)
    .await
    .expect("insert without a document");
    assert_eq!(
        found(api, &[("query", "legacy gala")]).await,
        [id.to_string()]
    );
    assert_eq!(
        found(api, &[("query", "braga old")]).await,
        [id.to_string()]
    );
}
