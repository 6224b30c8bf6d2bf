//! Sentence segmentation on realistic posts, reviews and articles, through
//! the public API only.

use osprey_nlp::segment::split_sentences;

fn split(src: &str) -> Vec<&str> {
    let segments = split_sentences(src);
    for s in &segments {
        assert_eq!(s.char_start, src[..s.start].chars().count());
        assert_eq!(s.char_end, src[..s.end].chars().count());
    }
    segments.iter().map(|s| s.text(src)).collect()
}

#[test]
fn reddit_post_with_edits() {
    let src = "TIFU by deleting prod. So yesterday my boss (Mr. Jenkins) asked me to clean up the old DB... \
               I ran `DROP TABLE users;` on the wrong server lol.\n\nEDIT: Thanks for the gold, kind stranger!\n\
               EDIT 2: Yes, I still have a job. For now.";
    assert_eq!(
        split(src),
        [
            "TIFU by deleting prod.",
            "So yesterday my boss (Mr. Jenkins) asked me to clean up the old DB...",
            "I ran `DROP TABLE users;` on the wrong server lol.",
            "EDIT: Thanks for the gold, kind stranger!",
            "EDIT 2: Yes, I still have a job.",
            "For now.",
        ]
    );
}

#[test]
fn release_notes_with_lists_links_and_quotes() {
    let src = "Update v2.3.1 is out!!! Changelog:\n- Fixed crash on startup.\n- Improved perf by ~30%\n\
               1. Download from https://example.com/dl?v=2.3.1.\n2. Run it\n\n> This is the best update yet.\n> Agreed!";
    assert_eq!(
        split(src),
        [
            "Update v2.3.1 is out!!!",
            "Changelog:",
            "Fixed crash on startup.",
            "Improved perf by ~30%",
            "Download from https://example.com/dl?v=2.3.1.",
            "Run it",
            "This is the best update yet.",
            "Agreed!",
        ]
    );
}

#[test]
fn review_with_abbreviations_and_emoji() {
    let src = "Ordered the 5 lb. bag on Jan. 3rd and it arrived Jan. 10th... not impressed. The seal was broken?! \
               Seriously, Amazon. 1/10 would not recommend 😡😡";
    assert_eq!(
        split(src),
        [
            "Ordered the 5 lb. bag on Jan. 3rd and it arrived Jan. 10th... not impressed.",
            "The seal was broken?!",
            "Seriously, Amazon.",
            "1/10 would not recommend 😡😡",
        ]
    );
}

#[test]
fn dialogue_and_article_prose() {
    assert_eq!(
        split("He said, \"I'll be there at 5 p.m.\" But he never came. Typical."),
        ["He said, \"I'll be there at 5 p.m.\"", "But he never came.", "Typical."]
    );
    assert_eq!(
        split("\"Why?\" she asked. \"Because I said so!\" he replied."),
        ["\"Why?\" she asked.", "\"Because I said so!\" he replied."]
    );
    assert_eq!(
        split("The U.K. and the U.S. signed the deal. Prices rose 3.5% in Q1, e.g. for oil. Dr. A. B. Smith, Ph.D., commented."),
        ["The U.K. and the U.S. signed the deal.", "Prices rose 3.5% in Q1, e.g. for oil.", "Dr. A. B. Smith, Ph.D., commented."]
    );
}

#[test]
fn informal_chat() {
    assert_eq!(
        split("i dont even know anymore... like what is the point lol. anyway how r u"),
        ["i dont even know anymore... like what is the point lol.", "anyway how r u"]
    );
    assert_eq!(split("Wait WHAT?!?! 😱😱 no way!!!! omg"), ["Wait WHAT?!?! 😱😱", "no way!!!!", "omg"]);
}
