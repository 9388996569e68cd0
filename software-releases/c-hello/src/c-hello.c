/* c-hello: a small HTTP responder. GET / answers the content of a greeting file.
 *
 * Usage: c-hello HOST PORT GREETING_FILE
 *
 * One request per connection (HTTP/1.0 style, "Connection: close"), one connection at a time:
 * enough for a greeting, and small enough to read in one sitting. SIGTERM and SIGINT stop it
 * with exit status 0. Errors at start are one line on stderr and exit status 1.
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_GREETING 65536
#define MAX_REQUEST 8192

static volatile sig_atomic_t stopping = 0;

static void on_signal(int signum) {
    (void)signum;
    stopping = 1;
}

static int fail(const char *message, const char *detail) {
    fprintf(stderr, "c-hello: %s%s\n", message, detail ? detail : "");
    return 1;
}

static long read_greeting(const char *path, char *buffer, size_t size) {
    FILE *file = fopen(path, "rb");
    if (!file) return -1;
    size_t length = fread(buffer, 1, size - 2, file);
    int failed = ferror(file);
    fclose(file);
    if (failed) return -1;
    while (length > 0 && (buffer[length - 1] == '\n' || buffer[length - 1] == '\r')) length--;
    buffer[length++] = '\n';
    return (long)length;
}

static int parse_port(const char *text) {
    char *end;
    errno = 0;
    long port = strtol(text, &end, 10);
    if (errno || end == text || *end || port < 1 || port > 65535) return -1;
    return (int)port;
}

static int listen_on(const char *host, const char *port) {
    struct addrinfo hints, *found, *each;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    int status = getaddrinfo(host, port, &hints, &found);
    if (status) {
        fprintf(stderr, "c-hello: cannot listen on %s port %s: %s\n", host, port, gai_strerror(status));
        return -1;
    }
    int server = -1, error = 0;
    for (each = found; each && server < 0; each = each->ai_next) {
        server = socket(each->ai_family, each->ai_socktype, each->ai_protocol);
        if (server < 0) { error = errno; continue; }
        int on = 1;
        setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        if (bind(server, each->ai_addr, each->ai_addrlen) || listen(server, 16)) {
            error = errno;
            close(server);
            server = -1;
        }
    }
    freeaddrinfo(found);
    if (server < 0)
        fprintf(stderr, "c-hello: cannot listen on %s port %s: %s\n", host, port, strerror(error));
    return server;
}

static void send_all(int client, const char *data, size_t length) {
    while (length > 0) {
        ssize_t sent = send(client, data, length, MSG_NOSIGNAL);
        if (sent <= 0) return;
        data += sent;
        length -= (size_t)sent;
    }
}

static void respond(int client, const char *status, const char *body, size_t length) {
    char head[256];
    int size = snprintf(head, sizeof head,
                        "HTTP/1.0 %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, length);
    send_all(client, head, (size_t)size);
    send_all(client, body, length);
}

static void serve(int client, const char *greeting, size_t length) {
    char request[MAX_REQUEST + 1];
    size_t used = 0;
    struct timeval timeout = {5, 0};
    setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    while (used < MAX_REQUEST) {
        ssize_t got = recv(client, request + used, MAX_REQUEST - used, 0);
        if (got <= 0) return;
        used += (size_t)got;
        request[used] = '\0';
        if (strstr(request, "\r\n\r\n") || strstr(request, "\n\n")) break;
    }
    request[used] = '\0';
    if (strncmp(request, "GET ", 4) != 0) {
        respond(client, "405 Method Not Allowed", "only GET is served\n", 19);
    } else if (strncmp(request + 4, "/ ", 2) == 0 || strncmp(request + 4, "/?", 2) == 0) {
        respond(client, "200 OK", greeting, length);
    } else {
        respond(client, "404 Not Found", "not found\n", 10);
    }
}

int main(int argc, char **argv) {
    static char greeting[MAX_GREETING];
    if (argc != 4) return fail("usage: c-hello HOST PORT GREETING_FILE", NULL);
    if (parse_port(argv[2]) < 0) {
        fprintf(stderr, "c-hello: invalid port '%s': expected a number from 1 to 65535\n", argv[2]);
        return 1;
    }
    long length = read_greeting(argv[3], greeting, sizeof greeting);
    if (length < 0) {
        fprintf(stderr, "c-hello: cannot read the greeting file %s: %s\n", argv[3], strerror(errno));
        return 1;
    }
    int server = listen_on(argv[1], argv[2]);
    if (server < 0) return 1;

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;  /* no SA_RESTART: accept() returns EINTR */
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    printf("c-hello: serving on %s port %s\n", argv[1], argv[2]);
    fflush(stdout);
    while (!stopping) {
        int client = accept(server, NULL, NULL);
        if (client < 0) continue;
        serve(client, greeting, (size_t)length);
        close(client);
    }
    close(server);
    return 0;
}
