/* What a pod's C library answers, through its own stub resolver and /etc/resolv.conf.
 * Built twice by tests/it/resolvers.rs: with cc (glibc) and with musl-gcc (musl).
 *
 *   resolve [-4|-6] NAME   getaddrinfo: one address a line, in the order given
 *   resolve -x ADDRESS     getnameinfo with NI_NAMEREQD: the name
 *
 * On failure it prints "error NONAME|AGAIN|FAIL|OTHER <gai_strerror>" and exits 2, so a test
 * can tell a definite "no such name" from a temporary failure. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int fail(int rc) {
    const char *kind = rc == EAI_NONAME ? "NONAME"
                     : rc == EAI_AGAIN  ? "AGAIN"
                     : rc == EAI_FAIL   ? "FAIL"
                                        : "OTHER";
    printf("error %s %s\n", kind, gai_strerror(rc));
    return 2;
}

static int reverse(const char *text) {
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        len = sizeof *v4;
    } else if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        len = sizeof *v6;
    } else {
        printf("error OTHER not an address\n");
        return 2;
    }
    char host[NI_MAXHOST];
    int rc = getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, NULL, 0, NI_NAMEREQD);
    if (rc != 0) {
        return fail(rc);
    }
    printf("%s\n", host);
    return 0;
}

int main(int argc, char **argv) {
    int family = AF_UNSPEC;
    int i = 1;
    if (argc == 3 && strcmp(argv[1], "-x") == 0) {
        return reverse(argv[2]);
    }
    if (argc == 3 && strcmp(argv[1], "-4") == 0) {
        family = AF_INET;
        i = 2;
    } else if (argc == 3 && strcmp(argv[1], "-6") == 0) {
        family = AF_INET6;
        i = 2;
    }
    if (i != argc - 1) {
        fprintf(stderr, "usage: resolve [-4|-6] NAME | resolve -x ADDRESS\n");
        return 64;
    }
    struct addrinfo hints, *res, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(argv[i], NULL, &hints, &res);
    if (rc != 0) {
        return fail(rc);
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        char text[INET6_ADDRSTRLEN];
        const void *addr = ai->ai_family == AF_INET
                               ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                               : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        if (inet_ntop(ai->ai_family, addr, text, sizeof text) != NULL) {
            printf("%s\n", text);
        }
    }
    freeaddrinfo(res);
    return 0;
}
