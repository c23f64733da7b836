//! The scan and the refill against an in-memory chain that answers `getSignaturesForAddress` as a node
//! does: newest first, strictly between `until` and `before`, at most `limit`.

use std::cell::Cell;

use super::*;

/// Signatures `0..len`, oldest first, two to a slot.
fn chain(len: usize) -> Vec<SignatureInfo> {
    (0..len)
        .map(|i| SignatureInfo {
            signature: format!("sig{i}"),
            slot: 1000 + i as u64 / 2,
            block_time: None,
            failed: i % 5 == 4,
        })
        .collect()
}

fn list(
    chain: &[SignatureInfo],
    until: Option<&str>,
    before: Option<&str>,
    limit: usize,
) -> Vec<SignatureInfo> {
    let at = |s: &str| chain.iter().position(|info| info.signature == s);
    let after = until.and_then(at);
    let below = before.and_then(at).unwrap_or(chain.len());
    chain[..below]
        .iter()
        .enumerate()
        .rev()
        .filter(|(i, _)| after.is_none_or(|after| *i > after))
        .take(limit)
        .map(|(_, info)| info.clone())
        .collect()
}

/// Scans `chain` after `cursor`, then refills it page by page as the source does; returns the plan, the
/// signatures in the order refilled, and how many pages the scan asked for.
async fn scan_and_refill(
    chain: &[SignatureInfo],
    cursor: usize,
    page_size: usize,
    max_backfill: u64,
) -> (BackfillPlan, Vec<String>, usize) {
    let until = chain[cursor].signature.clone();
    let calls = Cell::new(0);
    let plan = scan(page_size, max_backfill, |before| {
        calls.set(calls.get() + 1);
        let page = list(chain, Some(&until), before.as_deref(), page_size);
        async move { Ok::<_, ()>(page) }
    })
    .await
    .unwrap();
    let mut refilled = Vec::new();
    let mut after = until;
    for mark in plan.pages_oldest_first() {
        let mut page = list(
            chain,
            Some(&after),
            Some(&mark.newest.signature),
            mark.len - 1,
        );
        assert!(page.len() < page_size, "a page read again fits one call");
        page.reverse();
        page.push(mark.newest.clone());
        refilled.extend(page.into_iter().map(|info| info.signature));
        after.clone_from(&mark.newest.signature);
    }
    (plan, refilled, calls.get())
}

fn names(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("sig{i}")).collect()
}

#[tokio::test]
async fn a_gap_of_many_pages_is_refilled_whole_oldest_first_from_one_mark_a_page() {
    let chain = chain(1001);
    let (plan, refilled, calls) = scan_and_refill(&chain, 0, 7, 1_000_000).await;
    assert_eq!(refilled, names(1..1001), "each signature once, in order");
    assert_eq!(plan.signatures, 1000);
    assert_eq!(plan.skipped, None);
    // 1000 signatures in pages of 7: 143 pages (the last of 6), one mark each, and no signature kept.
    assert_eq!(plan.marks.len(), 143);
    assert_eq!(calls, 143);
    assert_eq!(plan.pages_oldest_first().next().unwrap().len, 6);
}

#[tokio::test]
async fn a_gap_of_whole_pages_ends_with_an_empty_page() {
    let chain = chain(29);
    let (plan, refilled, calls) = scan_and_refill(&chain, 0, 7, 100).await;
    assert_eq!(refilled, names(1..29));
    assert_eq!((plan.marks.len(), calls), (4, 5));
}

#[tokio::test]
async fn nothing_after_the_cursor_is_nothing_to_do() {
    let chain = chain(10);
    let (plan, refilled, calls) = scan_and_refill(&chain, 9, 7, 100).await;
    assert_eq!(
        (plan, refilled.len(), calls),
        (BackfillPlan::default(), 0, 1)
    );
}

#[tokio::test]
async fn a_gap_over_the_cap_keeps_the_newest_and_counts_the_rest_to_the_cursor() {
    let chain = chain(101);
    // After sig0: 100 signatures; the newest 45 are backfilled (the cap cuts a page of 7), 55 skipped.
    let (plan, refilled, calls) = scan_and_refill(&chain, 0, 7, 45).await;
    assert_eq!(refilled, names(56..101));
    assert_eq!(plan.signatures, 45);
    assert_eq!(calls, 15, "the scan counts its way to the cursor");
    let gap = plan.skipped.unwrap();
    assert_eq!(gap.signatures, 55);
    assert_eq!(
        (gap.oldest_signature.as_str(), gap.first_slot),
        ("sig1", 1000)
    );
    assert_eq!(
        (gap.newest_signature.as_str(), gap.last_slot),
        ("sig55", 1027)
    );
}

#[tokio::test]
async fn a_cap_of_whole_pages_and_a_cap_of_zero() {
    let chain = chain(101);
    let (plan, refilled, _) = scan_and_refill(&chain, 0, 10, 30).await;
    assert_eq!(refilled, names(71..101));
    assert_eq!(plan.skipped.unwrap().signatures, 70);
    let (plan, refilled, _) = scan_and_refill(&chain, 0, 10, 0).await;
    assert!(refilled.is_empty());
    let gap = plan.skipped.unwrap();
    assert_eq!(
        (gap.signatures, gap.newest_signature.as_str()),
        (100, "sig100")
    );
}

#[test]
fn health_keeps_only_the_last_gaps() {
    let mut gaps = SkippedGaps::default();
    for signatures in 1..=RECENT_GAPS as u64 + 3 {
        gaps.record(SkippedGap {
            signatures,
            first_slot: 1,
            last_slot: 2,
            oldest_signature: "a".into(),
            newest_signature: "b".into(),
            found_at_ms: 0,
        });
    }
    let recent = gaps.recent();
    assert_eq!(recent.len(), RECENT_GAPS);
    assert_eq!(recent.last().unwrap().signatures, RECENT_GAPS as u64 + 3);
}
