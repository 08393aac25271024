// The thinking filter of reasoning models (cli/reasoning.c): <think>...</think> found however
// the reply is cut into pieces (tags split across tokens), hidden or marked as thinking, a reply
// that starts inside a think block the prompt opened, and the split of a reply into
// reasoning_content and the answer.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/reasoning.c"
#include "tests/test_util.h"

typedef struct {
    char answer[256], thinking[256];
} sink;

static bool collect(void *ud, const char *s, size_t n, bool thinking) {
    sink *k = ud;
    char *dst = thinking ? k->thinking : k->answer;
    strncat(dst, s, n);
    return true;
}

// Feeds text in pieces of `step` bytes; returns what came out.
static sink run(reasoning_mode mode, const char *prompt, const char *text, size_t step, bool harmony) {
    sink k = {{0}, {0}};
    reasoning_filter f;
    reasoning_init(&f, mode, prompt, collect, &k);
    if (harmony) reasoning_set_harmony(&f);
    for (size_t i = 0, n = strlen(text); i < n; i += step) reasoning_feed(&f, text + i, i + step <= n ? step : n - i);
    reasoning_flush(&f);
    return k;
}

static void expect_in(bool harmony, reasoning_mode mode, const char *prompt, const char *text, const char *answer,
                      const char *thinking) {
    for (size_t step = 1; step <= strlen(text); step++) {
        sink k = run(mode, prompt, text, step, harmony);
        CHECK(!strcmp(k.answer, answer) && !strcmp(k.thinking, thinking),
              "'%s' in pieces of %zu: answer '%s' thinking '%s' (want '%s' / '%s')", text, step, k.answer, k.thinking,
              answer, thinking);
    }
}

static void expect(reasoning_mode mode, const char *prompt, const char *text, const char *answer, const char *thinking) {
    expect_in(false, mode, prompt, text, answer, thinking);
}

// gpt-oss's harmony format: channels instead of tags; the markup between messages never shows.
static void check_harmony(void) {
    const char *reply = "<|channel|>analysis<|message|>User says hi. Reply.<|end|>"
                        "<|start|>assistant<|channel|>final<|message|>Hi! 1 < 2 <b>.<|return|>";
    expect_in(true, REASONING_DIM, NULL, reply, "Hi! 1 < 2 <b>.", "User says hi. Reply.\n"); // (a line of its own)
    expect_in(true, REASONING_HIDE, NULL, reply, "Hi! 1 < 2 <b>.", "");
    expect_in(true, REASONING_DIM, NULL, "<|channel|>commentary to=functions.w <|constrain|>json<|message|>{\"c\": 1}<|call|>",
              "", "{\"c\": 1}\n");
    expect_in(true, REASONING_DIM, NULL, "no channels <|x|> here", "no channels  here", ""); // an unknown tag hides
    expect_in(true, REASONING_DIM, NULL, "plain <i>text</i> < ok", "plain <i>text</i> < ok", "");
    expect_in(true, REASONING_DIM, NULL, "<|channel|>final<|message|>cut off mid-answer", "cut off mid-answer", "");
    char *thinking, *answer = reasoning_split_harmony(reply, &thinking);
    CHECK(answer && thinking && !strcmp(answer, "Hi! 1 < 2 <b>.") && !strcmp(thinking, "User says hi. Reply."),
          "harmony split: '%s' / '%s'", answer ? answer : "(null)", thinking ? thinking : "(null)");
    free(answer);
    free(thinking);
    answer = reasoning_split_harmony("just text", &thinking);
    CHECK(answer && !strcmp(answer, "just text") && !thinking, "harmony split without channels");
    free(answer);
}

int main(void) {
    check_harmony();
    expect(REASONING_DIM, NULL, "a<think>b c</think>d e", "ad e", "<think>b c</think>");
    expect(REASONING_HIDE, NULL, "a<think>b c</think>d e", "ad e", "");
    expect(REASONING_SHOW, NULL, "a<think>b c</think>d e", "a<think>b c</think>d e", "");
    // the prompt opened the block: the reply starts as thinking
    expect(REASONING_DIM, "<|im_start|>assistant\n<think>\n", "x</think>\ny", "\ny", "x</think>");
    expect(REASONING_HIDE, "<think>a</think><think>\n", "never closed", "", "");
    expect(REASONING_DIM, "<think>a</think>\n", "no tags", "no tags", "");
    // near misses stay text; a tag start cut off at the end is flushed as it is
    expect(REASONING_DIM, NULL, "<th>x</thin> <<think>y", "<th>x</thin> <", "<think>y");
    expect(REASONING_DIM, NULL, "ends <thi", "ends <thi", "");

    CHECK(reasoning_open_at_end("a<think>\n") && !reasoning_open_at_end("<think>a</think>\n") &&
          !reasoning_open_at_end("plain"), "reasoning_open_at_end");

    char *thinking, *answer = reasoning_split("<think>\nweigh it\n</think>\n\nThe answer.", &thinking);
    CHECK(answer && thinking && !strcmp(answer, "The answer.") && !strcmp(thinking, "weigh it"), "split: '%s' / '%s'",
          answer, thinking ? thinking : "(null)");
    free(answer);
    free(thinking);
    answer = reasoning_split("started in the prompt</think>ok", &thinking);
    CHECK(!strcmp(answer, "ok") && thinking && !strcmp(thinking, "started in the prompt"), "split without <think>");
    free(answer);
    free(thinking);
    answer = reasoning_split("no thinking", &thinking);
    CHECK(!strcmp(answer, "no thinking") && !thinking, "split without tags");
    free(answer);
    return test_result("test_chat_reasoning");
}
