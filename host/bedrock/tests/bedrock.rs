//! The invoker with the real AWS SDK against the emulator, over HTTP on
//! 127.0.0.1: failover, cooldowns, streams continued across regions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed expectation is the test failing"
)]

use std::sync::Arc;
use std::time::Duration;

use mangaassist_bedrock::clock::{Clock, ManualClock, SystemClock};
use mangaassist_bedrock::invoker::{Candidate, InvokeError, Invoker, InvokerConfig, Reply};
use mangaassist_bedrock::profile::EnvProfile;
use mangaassist_core::body::{BodySettings, ClaudeBody, build_body};
use mangaassist_core::models::{Catalog, ModelSpec};
use mangaassist_emulator::faults::{Fault, FaultPlan};
use mangaassist_emulator::{self as emulator, EmulatorConfig, EmulatorHandle, Latency, reply};

const REGIONS: [&str; 3] = ["us-east-1", "us-west-2", "ap-northeast-1"];
const BUDGET: Duration = Duration::from_secs(20);

async fn setup(clock: Arc<dyn Clock>) -> (EmulatorHandle, Invoker) {
    let emulator = emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorConfig::default())
        .await
        .unwrap();
    let config = InvokerConfig::emulated(&emulator.endpoint(), &REGIONS, EnvProfile::DEV);
    let invoker = Invoker::new(&config, clock).await.unwrap();
    (emulator, invoker)
}

fn haiku() -> ModelSpec {
    Catalog::spec_default().get("haiku").unwrap().clone()
}

fn sonnet() -> ModelSpec {
    Catalog::spec_default().get("sonnet").unwrap().clone()
}

/// A current model that refuses an assistant prefill (Sonnet 4.6 through
/// its US inference profile).
fn no_prefill() -> ModelSpec {
    let model = Catalog::preset("current-us")
        .unwrap()
        .get("sonnet")
        .unwrap()
        .clone();
    assert!(!model.accepts_prefill());
    model
}

/// haiku alone, asked `message` within the test budget.
async fn ask(invoker: &Invoker, message: &str) -> Result<Reply, InvokeError> {
    let candidates = [Candidate {
        model: &haiku(),
        body: &body(message),
    }];
    invoker.invoke(&candidates, BUDGET).await
}

fn body(message: &str) -> ClaudeBody {
    build_body(
        message,
        &[],
        BodySettings {
            system: "You are a manga store assistant.",
            max_tokens: 512,
            temperature: 0.2,
        },
    )
    .unwrap()
}

#[tokio::test]
async fn a_healthy_primary_answers_with_usage_and_cost() {
    let (emulator, invoker) = setup(Arc::new(SystemClock::new())).await;
    let reply = ask(&invoker, "おすすめの漫画は？").await.unwrap();
    assert_eq!(reply.region, "us-east-1");
    assert_eq!(reply.text, reply::full_reply("おすすめの漫画は？"));
    assert!(reply.usage.input_tokens > 0 && reply.usage.output_tokens > 0);
    let expected = haiku().cost(reply.usage.input_tokens, reply.usage.output_tokens);
    assert!((reply.cost_usd - expected).abs() < 1e-12);
    assert!(reply.failures.is_empty());
    assert_eq!(emulator.requests("us-east-1"), 1);
}

#[tokio::test]
async fn primary_down_the_next_region_answers() {
    for fault in [
        Fault::Error500,
        Fault::Error503,
        Fault::ModelTimeout,
        Fault::Drop,
    ] {
        let (emulator, invoker) = setup(Arc::new(ManualClock::default())).await;
        emulator.set_fault("us-east-1", FaultPlan::always(fault));
        let reply = ask(&invoker, "hello").await.unwrap();
        assert_eq!(reply.region, "us-west-2", "{fault}");
        assert_eq!(reply.text, reply::full_reply("hello"));
        assert_eq!(reply.failures.len(), 1, "{fault}");
        assert_eq!(reply.failures[0].region, "us-east-1");
        let status = &invoker.health().snapshot()[0];
        assert_eq!(status.consecutive_failures, 1, "{fault}");
        assert_eq!(status.cooling_for, Some(Duration::from_secs(60)), "{fault}");
    }
}

#[tokio::test]
async fn throttling_fails_over() {
    let (emulator, invoker) = setup(Arc::new(SystemClock::new())).await;
    emulator.set_fault("us-east-1", FaultPlan::always(Fault::Throttle));
    let reply = ask(&invoker, "hello").await.unwrap();
    assert_eq!(reply.region, "us-west-2");
    assert_eq!(reply.failures[0].code, "ThrottlingException");
    // The throttled region is cooling down: the next request skips it.
    let again = ask(&invoker, "hello again").await.unwrap();
    assert_eq!(again.region, "us-west-2");
    assert!(again.failures.is_empty());
    assert_eq!(emulator.requests("us-east-1"), 1);
}

#[tokio::test]
async fn a_validation_exception_is_returned_at_once() {
    let (emulator, invoker) = setup(Arc::new(SystemClock::new())).await;
    emulator.set_fault("us-east-1", FaultPlan::always(Fault::Validation));
    let e = ask(&invoker, "hello").await.unwrap_err();
    assert_eq!(e.code(), "bedrock_rejected");
    assert!(
        matches!(&e, InvokeError::Rejected(f, _) if f.code == "ValidationException"),
        "{e}"
    );
    assert_eq!(emulator.requests("us-west-2"), 0, "no failover");
    assert_eq!(invoker.health().snapshot()[0].consecutive_failures, 0);
}

#[tokio::test]
async fn cooldowns_follow_the_schedule_and_recover() {
    let clock = Arc::new(ManualClock::default());
    let (emulator, invoker) = setup(clock.clone()).await;
    emulator.set_fault("us-east-1", FaultPlan::always(Fault::Error503));
    for expected in [60, 120, 240, 480, 600, 600] {
        let reply = ask(&invoker, "hi").await.unwrap();
        assert_eq!(reply.region, "us-west-2");
        let status = &invoker.health().snapshot()[0];
        assert_eq!(status.cooling_for, Some(Duration::from_secs(expected)));
        // Still cooling one second before the end: skipped.
        clock.advance(Duration::from_secs(expected - 1));
        let before = emulator.requests("us-east-1");
        ask(&invoker, "hi").await.unwrap();
        assert_eq!(
            emulator.requests("us-east-1"),
            before,
            "skipped while cooling"
        );
        clock.advance(Duration::from_secs(1));
    }
    // Recovery: the region works again, is tried, and its count resets.
    emulator.clear_fault("us-east-1");
    let reply = ask(&invoker, "hi").await.unwrap();
    assert_eq!(reply.region, "us-east-1");
    let status = &invoker.health().snapshot()[0];
    assert_eq!((status.consecutive_failures, status.cooling_for), (0, None));
}

#[tokio::test]
async fn every_region_down_names_each_region_then_probes_the_first_to_recover() {
    let clock = Arc::new(ManualClock::default());
    let (emulator, invoker) = setup(clock.clone()).await;
    for (region, fault) in
        REGIONS
            .iter()
            .zip([Fault::Throttle, Fault::Error500, Fault::ModelTimeout])
    {
        emulator.set_fault(region, FaultPlan::always(fault));
    }
    let e = ask(&invoker, "hi").await.unwrap_err();
    assert_eq!(e.code(), "bedrock_unavailable");
    let text = e.to_string();
    for needle in [
        "us-east-1: ThrottlingException",
        "us-west-2: InternalServerException",
        "ap-northeast-1: ModelTimeoutException",
    ] {
        assert!(text.contains(needle), "{text}");
    }
    // All cooling: not an instant failure; the soonest to end is probed.
    clock.advance(Duration::from_secs(10));
    emulator.clear_fault("us-east-1");
    let reply = ask(&invoker, "hi").await.unwrap();
    assert_eq!(reply.region, "us-east-1");
}

#[tokio::test]
async fn the_fallback_model_answers_after_every_region_fails_the_first() {
    let (emulator, invoker) = setup(Arc::new(SystemClock::new())).await;
    // Each region fails once (the sonnet attempt), then answers.
    for region in REGIONS {
        emulator.set_fault(
            region,
            FaultPlan {
                fault: Fault::Error503,
                every: 1,
                times: Some(1),
            },
        );
    }
    let reply = invoker
        .invoke(
            &[
                Candidate {
                    model: &sonnet(),
                    body: &body("hi"),
                },
                Candidate {
                    model: &haiku(),
                    body: &body("hi"),
                },
            ],
            BUDGET,
        )
        .await
        .unwrap();
    assert_eq!(reply.model_id, haiku().model_id);
    assert_eq!(reply.candidate, 1, "the second candidate answered");
    assert_eq!(reply.failures.len(), 3);
}

#[tokio::test]
async fn a_stream_cut_mid_answer_continues_seamlessly_in_the_next_region() {
    for (model, message) in [
        (haiku(), "『葬送のフリーレン』みたいな漫画はありますか？"),
        (
            no_prefill(),
            "『葬送のフリーレン』みたいな漫画はありますか？",
        ),
        (no_prefill(), "Any manga like Frieren, please?"),
    ] {
        cut_stream_continues(&model, message).await;
    }
}

async fn cut_stream_continues(model: &ModelSpec, message: &str) {
    let (emulator, invoker) = setup(Arc::new(SystemClock::new())).await;
    let context = format!("{} / {message}", model.model_id);
    emulator.set_fault("us-east-1", FaultPlan::always(Fault::Cut(5)));
    emulator.set_latency(Latency {
        ttft_ms: 0,
        per_token_ms: 2,
    });
    let mut pieces = Vec::new();
    let reply = invoker
        .invoke_stream(
            &[Candidate {
                model,
                body: &body(message),
            }],
            BUDGET,
            |p| pieces.push(p.to_string()),
        )
        .await
        .unwrap_or_else(|e| panic!("{context}: {e}"));
    let full = reply::full_reply(message);
    assert_eq!(
        pieces.concat(),
        full,
        "{context}: one seamless stream, nothing repeated"
    );
    assert_eq!(reply.text, full);
    assert_eq!(reply.region, "us-west-2");
    assert_eq!(reply.failures.len(), 1, "{context}: {:?}", reply.failures);
    assert!(
        reply.failures[0]
            .message
            .contains("after 5 streamed pieces"),
        "{:?}",
        reply.failures
    );
    // The first region's five pieces were kept; the second sent the rest.
    let first_five: String = reply::tokens(&full)[..5].concat();
    assert_eq!(pieces[..5].concat(), first_five);
    assert_eq!(emulator.requests("us-west-2"), 1);
    if !model.accepts_prefill() {
        // The continuation did repeat the seam: what the invoker dropped.
        let repeat = reply::seam_repeat(first_five.trim_end());
        assert!(
            !repeat.is_empty(),
            "{context}: the emulator repeats nothing"
        );
    }
}

/// The old way, a prefill, is what a model refusing it answers 400 to:
/// returned at once, since no region can fix it.
#[tokio::test]
async fn a_prefill_sent_to_a_model_refusing_it_is_refused_everywhere() {
    let (emulator, invoker) = setup(Arc::new(SystemClock::new())).await;
    let mut prefilled = body("おすすめは？");
    let start: String = reply::full_reply("おすすめは？").chars().take(10).collect();
    prefilled
        .messages
        .push(mangaassist_core::body::Turn::new("assistant", &start));
    let e = invoker
        .invoke(
            &[Candidate {
                model: &no_prefill(),
                body: &prefilled,
            }],
            BUDGET,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "bedrock_rejected");
    assert!(e.to_string().contains(emulator::PREFILL_REFUSED), "{e}");
    assert_eq!(emulator.requests("us-west-2"), 0);
    // The same body to a model that accepts prefill is answered.
    let candidates = [Candidate {
        model: &haiku(),
        body: &prefilled,
    }];
    let reply = invoker.invoke(&candidates, BUDGET).await.unwrap();
    assert_eq!(
        format!("{start}{}", reply.text),
        reply::full_reply("おすすめは？")
    );
}

/// CountTokens through the real SDK: the base model id of a profile, the
/// same count the invoke reports, refusals for models it cannot count.
#[tokio::test]
async fn count_tokens_gives_the_input_an_invoke_reports() {
    let (emulator, invoker) = setup(Arc::new(SystemClock::new())).await;
    let model = no_prefill();
    let asked = body("『ワンピース』の最新刊はいつ出ますか？");
    let limit = Duration::from_secs(5);
    let counted = invoker.count_tokens(&model, &asked, limit).await.unwrap();
    let candidates = [Candidate {
        model: &model,
        body: &asked,
    }];
    let reply = invoker.invoke(&candidates, BUDGET).await.unwrap();
    assert_eq!(counted, reply.usage.input_tokens);
    assert!(counted > 10);
    // A model the catalog does not mark: no call at all.
    let before = emulator.requests("us-east-1");
    let e = invoker
        .count_tokens(&haiku(), &asked, limit)
        .await
        .unwrap_err();
    assert_eq!(e.code, "count_tokens_unsupported");
    assert_eq!(emulator.requests("us-east-1"), before);
    // A model marked but not countable (a profile id given as the base id):
    // Bedrock's own refusal, not retried elsewhere.
    let mut wrong = model.clone();
    wrong.model_id = "us.us.anthropic.claude-sonnet-4-6".into();
    let e = invoker
        .count_tokens(&wrong, &asked, limit)
        .await
        .unwrap_err();
    assert!(e.message.contains(emulator::COUNT_TOKENS_REFUSED), "{e}");
    assert!(!e.fail_over);
    // A throttled region: the next one counts.
    emulator.set_fault("us-east-1", FaultPlan::always(Fault::Throttle));
    let again = invoker.count_tokens(&model, &asked, limit).await.unwrap();
    assert_eq!(again, counted);
    assert_eq!(emulator.requests("us-west-2"), 1);
}

/// Usage and cost count every attempt: the cut region's input and its five
/// streamed tokens were billed too.
#[tokio::test]
async fn a_continued_stream_counts_the_usage_of_every_attempt() {
    let message = "『葬送のフリーレン』みたいな漫画はありますか？";
    let (_clean_emulator, clean) = setup(Arc::new(SystemClock::new())).await;
    let whole = clean
        .invoke_stream(
            &[Candidate {
                model: &haiku(),
                body: &body(message),
            }],
            BUDGET,
            |_| {},
        )
        .await
        .unwrap();
    let (emulator, invoker) = setup(Arc::new(SystemClock::new())).await;
    emulator.set_fault("us-east-1", FaultPlan::always(Fault::Cut(5)));
    let reply = invoker
        .invoke_stream(
            &[Candidate {
                model: &haiku(),
                body: &body(message),
            }],
            BUDGET,
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(reply.failures.len(), 1);
    // Five tokens from the first region, the rest from the second.
    assert_eq!(reply.usage.output_tokens, whole.usage.output_tokens);
    // The first attempt's input, plus the second's (which also carries the
    // five tokens as a prefill).
    assert!(
        reply.usage.input_tokens > 2 * whole.usage.input_tokens,
        "{:?} vs one attempt {:?}",
        reply.usage,
        whole.usage
    );
    let expected = haiku().cost(reply.usage.input_tokens, reply.usage.output_tokens);
    assert!((reply.cost_usd - expected).abs() < 1e-12);
}

/// A request that fails after a stream was cut mid-answer still reports
/// what that attempt used (it was billed).
#[tokio::test]
async fn a_failed_request_reports_what_its_attempts_used() {
    let (emulator, invoker) = setup(Arc::new(SystemClock::new())).await;
    emulator.set_fault("us-east-1", FaultPlan::always(Fault::Cut(5)));
    for region in ["us-west-2", "ap-northeast-1"] {
        emulator.set_fault(region, FaultPlan::always(Fault::Error500));
    }
    let e = invoker
        .invoke_stream(
            &[Candidate {
                model: &haiku(),
                body: &body("hello"),
            }],
            BUDGET,
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(e, InvokeError::Exhausted(..)), "{e}");
    let spent = e.spent();
    assert_eq!(spent.usage.output_tokens, 5);
    assert!(spent.usage.input_tokens > 0);
    let expected = haiku().cost(spent.usage.input_tokens, 5);
    assert!((spent.cost_usd - expected).abs() < 1e-12);
}

/// A stream is bounded by time to first token and by silence between
/// events, not by the model's whole-call timeout: a long, healthy answer is
/// not cut and its region not cooled.
#[tokio::test]
async fn a_long_healthy_stream_outlasts_the_model_timeout() {
    let (emulator, invoker) = setup(Arc::new(SystemClock::new())).await;
    emulator.set_latency(Latency {
        ttft_ms: 50,
        per_token_ms: 25,
    });
    let message = "おすすめの少年漫画を三つ、理由と一緒に教えてください。";
    let tokens = reply::tokens(&reply::full_reply(message)).len() as u64;
    assert!(tokens * 25 > 600, "the answer takes well over the timeout");
    let mut model = haiku();
    model.timeout_ms = 300;
    let mut text = String::new();
    let reply = invoker
        .invoke_stream(
            &[Candidate {
                model: &model,
                body: &body(message),
            }],
            BUDGET,
            |p| text.push_str(p),
        )
        .await
        .unwrap();
    assert!(reply.failures.is_empty(), "{:?}", reply.failures);
    assert_eq!(reply.region, "us-east-1");
    assert_eq!(text, reply::full_reply(message));
    assert!(
        invoker
            .health()
            .snapshot()
            .iter()
            .all(|r| r.cooling_for.is_none())
    );
}

/// A stream that falls silent mid-answer is abandoned after the idle bound
/// and continued in the next region, nothing repeated.
#[tokio::test]
async fn a_stream_silent_mid_answer_is_continued_after_the_idle_bound() {
    let emulator = emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorConfig::default())
        .await
        .unwrap();
    let mut config = InvokerConfig::emulated(&emulator.endpoint(), &REGIONS, EnvProfile::DEV);
    config.stream_idle = Duration::from_millis(300);
    let invoker = Invoker::new(&config, Arc::new(SystemClock::new()))
        .await
        .unwrap();
    emulator.set_fault("us-east-1", FaultPlan::always(Fault::Pause(4)));
    let message = "静かになったら次へ";
    let started = std::time::Instant::now();
    let mut text = String::new();
    let reply = invoker
        .invoke_stream(
            &[Candidate {
                model: &haiku(),
                body: &body(message),
            }],
            BUDGET,
            |p| text.push_str(p),
        )
        .await
        .unwrap();
    assert_eq!(
        text,
        reply::full_reply(message),
        "one stream, nothing repeated"
    );
    assert_eq!(reply.region, "us-west-2");
    assert_eq!(
        reply.failures[0].code, "stream_idle",
        "{:?}",
        reply.failures
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_stream_whose_region_fails_before_the_first_token_is_replaced() {
    let (emulator, invoker) = setup(Arc::new(SystemClock::new())).await;
    emulator.set_fault("us-east-1", FaultPlan::always(Fault::Throttle));
    emulator.set_fault("us-west-2", FaultPlan::always(Fault::Cut(0)));
    let mut text = String::new();
    let reply = invoker
        .invoke_stream(
            &[Candidate {
                model: &haiku(),
                body: &body("hello"),
            }],
            BUDGET,
            |p| text.push_str(p),
        )
        .await
        .unwrap();
    assert_eq!(text, reply::full_reply("hello"));
    assert_eq!(reply.region, "ap-northeast-1");
    assert!(reply.usage.output_tokens > 0);
}

#[tokio::test]
async fn a_stalled_region_is_abandoned_at_the_model_timeout() {
    let (emulator, invoker) = setup(Arc::new(SystemClock::new())).await;
    emulator.set_fault("us-east-1", FaultPlan::always(Fault::Stall));
    let mut model = haiku();
    model.timeout_ms = 300;
    let reply = invoker
        .invoke(
            &[Candidate {
                model: &model,
                body: &body("hello"),
            }],
            BUDGET,
        )
        .await
        .unwrap();
    assert_eq!(reply.region, "us-west-2");
    assert_eq!(reply.failures[0].code, "timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_requests_through_a_flapping_region_lose_none() {
    flapping(haiku()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_requests_through_a_flapping_region_lose_none_without_prefill() {
    flapping(no_prefill()).await;
}

/// 200 concurrent requests, half streamed, through a primary failing every
/// other request and a secondary cutting every third stream.
async fn flapping(model: ModelSpec) {
    let (emulator, invoker) = setup(Arc::new(SystemClock::new())).await;
    // Every other request to the primary fails; streams are cut too.
    emulator.set_fault(
        "us-east-1",
        FaultPlan {
            fault: Fault::Error503,
            every: 2,
            times: None,
        },
    );
    emulator.set_fault(
        "us-west-2",
        FaultPlan {
            fault: Fault::Cut(3),
            every: 3,
            times: None,
        },
    );
    let invoker = Arc::new(invoker);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let invoker = Arc::clone(&invoker);
            let model = model.clone();
            tokio::spawn(async move {
                let message = if i % 4 < 2 {
                    format!("request {i}: おすすめは？")
                } else {
                    format!("request {i}: any recommendations?")
                };
                if i % 2 == 0 {
                    let r = invoker
                        .invoke(
                            &[Candidate {
                                model: &model,
                                body: &body(&message),
                            }],
                            BUDGET,
                        )
                        .await;
                    (message, r.map(|r| r.text))
                } else {
                    let mut text = String::new();
                    let r = invoker
                        .invoke_stream(
                            &[Candidate {
                                model: &model,
                                body: &body(&message),
                            }],
                            BUDGET,
                            |p| text.push_str(p),
                        )
                        .await;
                    (message, r.map(|_| text))
                }
            })
        })
        .collect();
    let mut answered = 0;
    for task in tasks {
        let (message, result) = task.await.unwrap();
        let text = result.unwrap_or_else(|e| panic!("{message}: {e}"));
        assert_eq!(text, reply::full_reply(&message), "{message}");
        answered += 1;
    }
    assert_eq!(answered, 200);
}

#[tokio::test]
async fn the_request_budget_bounds_all_attempts() {
    let (emulator, invoker) = setup(Arc::new(SystemClock::new())).await;
    for region in REGIONS {
        emulator.set_fault(region, FaultPlan::always(Fault::Stall));
    }
    let started = std::time::Instant::now();
    let e = invoker
        .invoke(
            &[Candidate {
                model: &haiku(),
                body: &body("hello"),
            }],
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "bedrock_deadline", "{e}");
    assert!(e.to_string().contains("us-east-1: timeout"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// CountTokens is bounded as a whole: with every region stalled, the count
/// gives up at its limit (the service then reserves by the estimate).
#[tokio::test]
async fn count_tokens_gives_up_at_its_limit_when_every_region_stalls() {
    let (emulator, invoker) = setup(Arc::new(SystemClock::new())).await;
    for region in REGIONS {
        emulator.set_fault(region, FaultPlan::always(Fault::Stall));
    }
    let limit = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let e = invoker
        .count_tokens(&no_prefill(), &body("おすすめは？"), limit)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.code, "timeout", "{e}");
    assert!(took >= limit && took < limit * 4, "{took:?}");
    // One bound for all regions: the second region was never reached in time.
    assert_eq!(emulator.requests("us-west-2"), 0);
}
