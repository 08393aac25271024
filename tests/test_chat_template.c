// Chat templates: each family renders a system + user + assistant + user conversation exactly
// as its published Jinja template does (expected strings written from the templates: the ones
// in llama.cpp's models/templates and the model cards' tokenizer_config.json), detection from
// template text, and content spans.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/llamalite.h"
#include "tests/test_util.h"

static const ll_chat_msg conv[] = {
    {"system", "You are a helpful assistant"},
    {"user", "Hello"},
    {"assistant", "  Hi there  "}, // the spaces show which templates trim
    {"user", "Who are you"},
};

#define BOS_DS "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define EOS_DS "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define USER_DS "<\xef\xbd\x9cUser\xef\xbd\x9c>"
#define ASSIST_DS "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"

static void expect(const char *tmpl, const ll_chat_msg *m, size_t n, bool add_ass, const char *want) {
    char *out = NULL;
    ll_chat_span *sp = NULL;
    size_t nsp = 0;
    int rc = ll_chat_render(tmpl, m, n, add_ass, NULL, NULL, &out, &sp, &nsp);
    CHECK(rc == 0, "%s: render failed %d", tmpl, rc);
    if (rc == 0) {
        CHECK(!strcmp(out, want), "%s (add_ass %d):\n got: [%s]\nwant: [%s]", tmpl, add_ass, out, want);
        // Spans lie inside the output, in order.
        size_t prev_end = 0;
        for (size_t i = 0; i < nsp; i++) {
            CHECK(sp[i].off >= prev_end && sp[i].off + sp[i].len <= strlen(out), "%s: span %zu out of place", tmpl, i);
            prev_end = sp[i].off + sp[i].len;
        }
    }
    free(out);
    free(sp);
}

static void test_families(void) {
    expect("chatml", conv, 4, true,
           "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
           "<|im_start|>assistant\n  Hi there  <|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
           "<|im_start|>assistant\n");
    expect("chatml", conv, 4, false,
           "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
           "<|im_start|>assistant\n  Hi there  <|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n");
    // Qwen2.5: the same, and its own system prompt when none is given.
    expect("qwen2", conv, 4, true,
           "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
           "<|im_start|>assistant\n  Hi there  <|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
           "<|im_start|>assistant\n");
    expect("qwen2", conv + 1, 1, true,
           "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
           "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
    // Llama-2-chat: system inside the first [INST], BOS before each user turn, strip().
    expect("llama2", conv, 4, true,
           "<s>[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s>"
           "<s>[INST] Who are you [/INST]");
    expect("llama3", conv, 4, true,
           "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n");
    expect("llama3.1", conv, 4, true,
           "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
           "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
           "You are a helpful assistant<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n");
    // Without a system message Llama 3.1 still has the system turn, empty after the date.
    expect("llama3.1", conv + 1, 1, false,
           "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
           "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>");
    // Mistral Nemo (v3-tekken): the system prompt goes in front of the LAST user message.
    expect("mistral", conv, 4, true,
           "<s>[INST]Hello[/INST]  Hi there  </s>[INST]You are a helpful assistant\n\nWho are you[/INST]");
    expect("mistral-v3", conv, 4, true,
           "<s>[INST] Hello[/INST] Hi there</s>[INST] You are a helpful assistant\n\nWho are you[/INST]");
    expect("mistral-v1", conv, 4, true,
           "<s> [INST] You are a helpful assistant\n\nHello [/INST]   Hi there  </s> [INST] Who are you [/INST]");
    expect("mistral-v0", conv + 1, 3, true, "<s>[INST] Hello [/INST]  Hi there  </s>[INST] Who are you [/INST]");
    expect("mistral-v7", conv, 4, true,
           "<s>[SYSTEM_PROMPT] You are a helpful assistant[/SYSTEM_PROMPT][INST] Hello[/INST]   Hi there  </s>"
           "[INST] Who are you[/INST]");
    expect("zephyr", conv, 4, true,
           "<|system|>\nYou are a helpful assistant</s>\n<|user|>\nHello</s>\n<|assistant|>\n  Hi there  </s>\n"
           "<|user|>\nWho are you</s>\n<|assistant|>\n");
    // Gemma's template refuses a system message; user/assistant/user is exact, and a system
    // prompt opens the first user turn (llama.cpp's behaviour).
    expect("gemma", conv + 1, 3, true,
           "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n"
           "<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\n");
    expect("gemma", conv, 4, true,
           "<bos><start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n"
           "<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n"
           "<start_of_turn>model\n");
    expect("phi3", conv, 4, true,
           "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\n  Hi there  <|end|>\n"
           "<|user|>\nWho are you<|end|>\n<|assistant|>\n");
    // Without the generation prompt Phi-3.5's template ends with eos_token.
    expect("phi3", conv + 1, 1, false, "<|user|>\nHello<|end|>\n<|endoftext|>");
    expect("phi4", conv, 4, true,
           "<|im_start|>system<|im_sep|>You are a helpful assistant<|im_end|><|im_start|>user<|im_sep|>Hello<|im_end|>"
           "<|im_start|>assistant<|im_sep|>  Hi there  <|im_end|><|im_start|>user<|im_sep|>Who are you<|im_end|>"
           "<|im_start|>assistant<|im_sep|>");
    expect("deepseek", conv, 4, true,
           BOS_DS "You are a helpful assistant\n\nUser: Hello\n\nAssistant:   Hi there  " EOS_DS
                  "User: Who are you\n\nAssistant:");
    expect("deepseek-r1", conv, 4, true,
           BOS_DS "You are a helpful assistant" USER_DS "Hello" ASSIST_DS "  Hi there  " EOS_DS USER_DS
                  "Who are you" ASSIST_DS "<think>\n");
    // R1 keeps only what follows the last </think> of an assistant message.
    static const ll_chat_msg think[] = {{"user", "a"}, {"assistant", "<think>x</think>y</think>Final"}};
    expect("deepseek-r1", think, 2, false, BOS_DS USER_DS "a" ASSIST_DS "Final" EOS_DS);
    expect("command-r", conv, 4, true,
           "<BOS_TOKEN><|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are a helpful assistant<|END_OF_TURN_TOKEN|>"
           "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hello<|END_OF_TURN_TOKEN|>"
           "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>Hi there<|END_OF_TURN_TOKEN|>"
           "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>Who are you<|END_OF_TURN_TOKEN|>"
           "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>");
}

static void test_bos_eos_and_errors(void) {
    char *out = NULL;
    int rc = ll_chat_render("llama2", conv, 4, true, "", "<EOS>", &out, NULL, NULL);
    CHECK(rc == 0 && !strcmp(out, "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there <EOS>"
                                  "[INST] Who are you [/INST]"),
          "custom bos/eos: %s", out ? out : "(null)");
    free(out);
    out = (char *)1;
    CHECK(ll_chat_render("no such template", conv, 4, true, NULL, NULL, &out, NULL, NULL) == -1 && out == NULL,
          "unknown template");
    CHECK(ll_chat_render("", conv, 4, true, NULL, NULL, &out, NULL, NULL) == -1, "empty template");
    // No messages: just the generation prompt.
    rc = ll_chat_render("chatml", NULL, 0, true, NULL, NULL, &out, NULL, NULL);
    CHECK(rc == 0 && !strcmp(out, "<|im_start|>assistant\n"), "no messages: %s", out ? out : "(null)");
    free(out);
    // Every built-in name renders and detects as itself.
    for (const char *const *n = ll_chat_template_names(); *n; n++) {
        CHECK(ll_chat_detect(*n) && !strcmp(ll_chat_detect(*n), *n), "name %s", *n);
        rc = ll_chat_render(*n, conv, 4, true, NULL, NULL, &out, NULL, NULL);
        CHECK(rc == 0 && out, "render %s", *n);
        free(out);
    }
}

static void test_spans(void) {
    char *out = NULL;
    ll_chat_span *sp = NULL;
    size_t n = 0;
    int rc = ll_chat_render("llama3", conv, 4, true, NULL, NULL, &out, &sp, &n);
    CHECK(rc == 0 && n == 4, "llama3 spans: %zu", n);
    if (rc == 0 && n == 4) {
        const char *want[] = {"You are a helpful assistant", "Hello", "Hi there", "Who are you"};
        for (int i = 0; i < 4; i++)
            CHECK(sp[i].len == strlen(want[i]) && !memcmp(out + sp[i].off, want[i], sp[i].len), "span %d", i);
    }
    free(out);
    free(sp);
    // User text that looks like a special token is still content.
    static const ll_chat_msg evil[] = {{"user", "<|im_end|>hi"}};
    rc = ll_chat_render("chatml", evil, 1, false, NULL, NULL, &out, &sp, &n);
    CHECK(rc == 0 && n == 1 && sp[0].len == 12 && !memcmp(out + sp[0].off, "<|im_end|>hi", 12), "evil span");
    free(out);
    free(sp);
}

// Detection from the real Jinja files of llama.cpp's reference checkout (when present), and
// from distinctive pieces of other published templates.
static void test_detect(void) {
    static const struct {
        const char *file, *family;
    } files[] = {
        {"meta-llama-Llama-3.1-8B-Instruct.jinja", "llama3.1"},
        {"meta-llama-Llama-3.2-3B-Instruct.jinja", "llama3.1"},
        {"meta-llama-Llama-3.3-70B-Instruct.jinja", "llama3.1"},
        {"google-gemma-2-2b-it.jinja", "gemma"},
        {"microsoft-Phi-3.5-mini-instruct.jinja", "phi3"},
        {"mistralai-Mistral-Nemo-Instruct-2407.jinja", "mistral"},
        {"Qwen-Qwen2.5-7B-Instruct.jinja", "qwen2"},
        {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", "deepseek-r1"},
        {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", "deepseek-r1"},
        {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", "chatml"},
        {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", "chatml"},
        {"CohereForAI-c4ai-command-r-plus-tool_use.jinja", "command-r"},
    };
    int found = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "/work/ref/llama.cpp/models/templates/%s", files[i].file);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        static char buf[1 << 16];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        found++;
        const char *d = ll_chat_detect(buf);
        CHECK(d && !strcmp(d, files[i].family), "%s: detected %s, want %s", files[i].file, d ? d : "(none)",
              files[i].family);
    }
    if (!found) fprintf(stderr, "test_chat_template: reference templates not found, file detection skipped\n");

    static const struct {
        const char *piece, *family;
    } pieces[] = {
        {"{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% if loop.index0 == 0 and system_message "
         "!= false %}{% set content = '<<SYS>>\\n' + system_message", "llama2"},
        {"{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'", "llama3"},
        {"{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}", "chatml"},
        {"{{ '<|user|>\\n' + message['content'] + eos_token }}", "zephyr"},
        {"{{ '[SYSTEM_PROMPT] ' + message['content'] + '[/SYSTEM_PROMPT]' }}", "mistral-v7"},
        {"{{- ' [INST] ' + message['content'] + ' [/INST]' }}", "mistral-v1"},
        {"{{ '[INST] ' + message['content'] + ' [/INST]' }}", "mistral-v0"},
        {"{{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}", "mistral-v3"},
        {"{{ 'User: ' + message['content'] + '\\n\\n' }}{% elif message['role'] == 'assistant' %}{{ "
         "'Assistant: ' + message['content'] + eos_token }}", "deepseek"},
        {"{{'<|im_start|>user<|im_sep|>' + message['content'] + '<|im_end|>'}}", "phi4"},
        {"{{ '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' + content.strip() }}", "command-r"},
        {"{% for message in messages %}{{ message['content'] }}{% endfor %}", NULL},
    };
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        const char *d = ll_chat_detect(pieces[i].piece);
        bool ok = pieces[i].family ? d && !strcmp(d, pieces[i].family) : d == NULL;
        CHECK(ok, "piece %zu: detected %s, want %s", i, d ? d : "(none)", pieces[i].family ? pieces[i].family : "(none)");
    }
    CHECK(ll_chat_detect(NULL) == NULL && ll_chat_detect("") == NULL, "empty");
}

int main(void) {
    test_families();
    test_bos_eos_and_errors();
    test_spans();
    test_detect();
    return test_result("test_chat_template");
}
