// Links a C program against the generated header and libmemmesh_uniffi exactly the way
// the Swift package does (the MemmeshFFI C target's header, -L<dir> -lmemmesh_uniffi
// plus an rpath), then calls into the library: the FFI contract version must be the
// one the generated Swift expects, and a scaffolding call must succeed.
// Built and run by ci/test-uniffi. gcc lacks clang's nullability qualifiers, so the
// script defines _Nonnull and _Nullable away.
#include <stdio.h>
#include <stdlib.h>

#include "MemmeshFFI.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s EXPECTED_CONTRACT_VERSION\n", argv[0]);
        return 2;
    }
    unsigned expected = (unsigned)strtoul(argv[1], NULL, 10);
    unsigned version = ffi_memmesh_uniffi_uniffi_contract_version();
    if (version != expected) {
        fprintf(stderr, "contract version %u, the generated Swift expects %u\n", version, expected);
        return 1;
    }
    RustCallStatus status = {0};
    RustBuffer config = uniffi_memmesh_uniffi_fn_func_default_node_config(&status);
    if (status.code != 0 || config.len == 0) {
        fprintf(stderr, "default_node_config failed: status %d, %llu bytes\n", (int)status.code,
                (unsigned long long)config.len);
        return 1;
    }
    ffi_memmesh_uniffi_rustbuffer_free(config, &status);
    printf("C link check: contract version %u, default_node_config returned %llu bytes\n", version,
           (unsigned long long)config.len);
    return status.code;
}
