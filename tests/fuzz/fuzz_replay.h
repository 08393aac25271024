// Replaying fuzz inputs without libFuzzer (fuzz_replay.c).
#ifndef LLAMALITE_FUZZ_REPLAY_H
#define LLAMALITE_FUZZ_REPLAY_H

// Feeds the file at path, or every file under the directory at path, to LLVMFuzzerTestOneInput.
void fuzz_feed_path(const char *path);
// How many inputs fuzz_feed_path has fed so far.
int fuzz_n_fed(void);

#endif
