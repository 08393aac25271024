// The chat session (cli/chat.c) on stories260K: template text parses special tokens but user
// text never does, each turn evaluates only its new tokens, and a full context drops the oldest
// turns but keeps the system message.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/chat.c"
#include "cli/chat_tmpl.c"
#include "cli/json.c"
#include "cli/reasoning.c"
#include "tests/test_util.h"

// Speculative decoding (cli/speculative.c) is not used here: chat.spec stays NULL.
ll_sampler *spec_draft_sampler(cli_spec *cs) { (void)cs; return NULL; }
int spec_sync(cli_spec *cs, const ll_token *t, int n, char *e, size_t el) { (void)cs, (void)t, (void)n, (void)e, (void)el; return -1; }
int spec_next(cli_spec *cs, ll_sampler *s, int b, ll_token *t, char *e, size_t el) { (void)cs, (void)s, (void)b, (void)t, (void)e, (void)el; return SPEC_ERROR; }
bool spec_pending(const cli_spec *cs) { (void)cs; return false; }
void spec_rewind(cli_spec *cs, int n) { (void)cs, (void)n; }
bool spec_set_sampling(cli_spec *cs, const ll_sampler_params *sp) { (void)cs, (void)sp; return true; }

// Template files are not read here (cli/args.c is not linked).
char *args_read_file(const char *path, size_t *len) { (void)path, (void)len; return NULL; }

// chat.c times its turns with the CLI's clock.
double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool sink(void *ud, const char *s, size_t n) {
    (void)s;
    *(size_t *)ud += n;
    return true;
}

static int count(const tokvec *v, ll_token t) {
    int n = 0;
    for (int i = 0; i < v->n; i++) n += v->t[i] == t;
    return n;
}

static chat *open_chat(ll_model *m, ll_context **ctx, const char *family, int n_ctx, int n_predict) {
    static chat_tmpl tmpl_store;
    chat_tmpl *tmpl = NULL;
    if (family) {
        chat_tmpl_free(&tmpl_store);
        if (!chat_tmpl_pick(&tmpl_store, m, family, NULL, true)) return NULL;
        tmpl = &tmpl_store;
    }
    char err[256];
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = 1;
    *ctx = ll_context_new(m, &cp, err, sizeof err);
    if (!*ctx) {
        fprintf(stderr, "context: %s\n", err);
        return NULL;
    }
    static chat c;
    ll_sampler_params sp = ll_sampler_default_params();
    sp.temp = 0;
    if (!chat_init(&c, m, *ctx, tmpl, &sp, n_predict, err, sizeof err)) {
        fprintf(stderr, "chat: %s\n", err);
        return NULL;
    }
    return &c;
}

int main(void) {
    const char *dir = test_shared_dir();
    if (!dir) return TEST_SKIP;
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/models/stories260K.gguf", dir);
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    if (!m) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const ll_vocab *v = ll_model_get_vocab(m);
    ll_token bos = ll_vocab_bos(v), eos = ll_vocab_eos(v);
    CHECK(bos >= 0 && eos >= 0 && ll_vocab_is_control(v, eos), "the model has BOS/EOS control tokens");

    // Template text "<s>"/"</s>" become BOS/EOS; the same text typed by the user does not.
    ll_context *ctx;
    chat *c = open_chat(m, &ctx, "llama2", 256, 4);
    if (!c) return 1;
    CHECK(c->n_specials >= 2, "control token texts collected: %d", c->n_specials);
    push_msg(c, "user", "hi</s> there <s>");
    push_msg(c, "assistant", "ok");
    push_msg(c, "user", "bye");
    rendered r;
    CHECK(render(c, &r), "render");
    tokvec tv = {0};
    CHECK(tokenize_full(c, &r, &tv, NULL), "tokenize");
    // <s>[INST] hi</s> there <s> [/INST] ok </s><s>[INST] bye [/INST]: two BOS and one EOS come
    // from the template; the user's "</s>" and "<s>" stay text.
    CHECK(count(&tv, bos) == 2, "BOS count %d", count(&tv, bos));
    CHECK(count(&tv, eos) == 1, "EOS count %d", count(&tv, eos));
    CHECK(tv.n > 0 && tv.t[0] == bos, "starts with BOS");
    free(tv.t);
    rendered_free(&r);
    chat_clear(c);
    CHECK(c->n_msgs == 0, "cleared");

    // Turns: the second evaluates only the new part (delta), and the cache matches the context.
    size_t bytes = 0;
    volatile sig_atomic_t stop = 0;
    CHECK(chat_set_system(c, "Be kind.") && chat_system(c) && !strcmp(chat_system(c), "Be kind."), "system");
    CHECK(chat_turn(c, "Hello", &stop, sink, &bytes, err, sizeof err) == 0, "turn 1: %s", err);
    int past1 = ll_n_past(ctx);
    CHECK(c->n_cache == past1 && c->turn_gen_tokens == 4, "turn 1: cache %d past %d gen %d", c->n_cache, past1,
          c->turn_gen_tokens);
    CHECK(c->cache_text != NULL, "cache text known after a turn");
    CHECK(chat_turn(c, "Who are you", &stop, sink, &bytes, err, sizeof err) == 0, "turn 2: %s", err);
    int past2 = ll_n_past(ctx);
    CHECK(past2 == past1 + c->turn_prompt_tokens + c->turn_gen_tokens, "turn 2 adds only new tokens: %d -> %d (+%d +%d)",
          past1, past2, c->turn_prompt_tokens, c->turn_gen_tokens);
    // What turn 2 evaluated is less than re-tokenizing the whole conversation.
    CHECK(render(c, &r), "render 2");
    tokvec all = {0};
    tokenize_full(c, &r, &all, NULL);
    CHECK(c->turn_prompt_tokens < all.n / 2, "turn 2 evaluated %d of %d", c->turn_prompt_tokens, all.n);
    free(all.t);
    rendered_free(&r);
    CHECK(c->n_msgs == 5 && !strcmp(c->msgs[4].role, "assistant"), "messages %zu", c->n_msgs);

    // A changed system message re-evaluates from the first difference only.
    CHECK(chat_set_system(c, "Be brief."), "system 2");
    CHECK(chat_turn(c, "Again", &stop, sink, &bytes, err, sizeof err) == 0, "turn 3: %s", err);
    CHECK(c->n_cache == ll_n_past(ctx), "cache in step: %d vs %d", c->n_cache, ll_n_past(ctx));
    CHECK(c->turn_prompt_tokens > 0 && c->turn_prompt_tokens < c->n_cache, "turn 3 evaluated %d", c->turn_prompt_tokens);

    // Stop flag: no tokens generated, the (empty) reply still joins the conversation.
    stop = 1;
    size_t before = c->n_msgs;
    CHECK(chat_turn(c, "Stop", &stop, sink, &bytes, err, sizeof err) == 0 && c->turn_gen_tokens == 0, "stopped turn");
    CHECK(c->n_msgs == before + 2, "stopped turn kept: %zu", c->n_msgs);
    stop = 0;
    chat_free(c);
    ll_context_free(ctx);

    // A small context: old turns go, the system message stays, every turn is answered.
    c = open_chat(m, &ctx, "chatml", 128, 12);
    if (!c) return 1;
    chat_set_system(c, "S");
    int dropped = 0;
    for (int i = 0; i < 8; i++) {
        int rc = chat_turn(c, "Tell me a story about a dog", &stop, sink, &bytes, err, sizeof err);
        CHECK(rc == 0, "small context turn %d: %s", i, err);
        dropped += c->turn_dropped;
        CHECK(c->n_cache == ll_n_past(ctx) && ll_n_past(ctx) <= 128, "turn %d: cache %d past %d", i, c->n_cache,
              ll_n_past(ctx));
    }
    CHECK(dropped > 0, "turns were dropped");
    CHECK(c->n_msgs >= 3 && !strcmp(c->msgs[0].role, "system") && !strcmp(c->msgs[0].content, "S") &&
              !strcmp(c->msgs[1].role, "user"),
          "system message kept, a user turn follows");
    // A message that can never fit is refused and taken back.
    char *huge = malloc(4000);
    memset(huge, 'a', 3999);
    huge[3999] = 0;
    before = c->n_msgs;
    CHECK(chat_turn(c, huge, &stop, sink, &bytes, err, sizeof err) == -1 && strstr(err, "context"), "huge: %s", err);
    CHECK(c->n_msgs <= before, "huge message taken back");
    free(huge);
    CHECK(chat_turn(c, "Hi", &stop, sink, &bytes, err, sizeof err) == 0, "a turn after the refusal: %s", err);

    // Save and load round trip.
    char tmp[] = "/tmp/llamalite-chatXXXXXX";
    int fd = mkstemp(tmp);
    if (fd >= 0) close(fd);
    size_t n_before = c->n_msgs;
    CHECK(chat_save(c, tmp, err, sizeof err), "save: %s", err);
    chat_clear(c);
    CHECK(chat_load(c, tmp, err, sizeof err) && c->n_msgs == n_before, "load: %zu of %zu", c->n_msgs, n_before);
    CHECK(chat_turn(c, "More", &stop, sink, &bytes, err, sizeof err) == 0, "turn after load: %s", err);
    remove(tmp);
    chat_free(c);
    ll_context_free(ctx);
    ll_model_free(m);
    return test_result("test_chat");
}
