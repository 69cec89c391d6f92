/* vsock_echo: the test client for virtio-vsock, on both sides of a VM.
 * Built static (gcc -static) so it runs in the busybox guest and in the harness's L1.
 *
 *   vsock_echo listen PORT                 guest: echo every vsock connection on PORT, for ever
 *   vsock_echo wait PORT                   guest: accept one vsock connection on PORT, then exit
 *   vsock_echo connect CID PORT N BYTES    guest: N connections to CID:PORT, each sends BYTES
 *                                          of a pattern and checks that all of it comes back
 *   vsock_echo uds-listen PATH             host: echo every connection on unix socket PATH
 *   vsock_echo uds-connect PATH PORT N BYTES
 *                                          host: N connections through the VMM's socket PATH
 *                                          ("CONNECT PORT" / "OK <port>"), each echo-checked;
 *                                          the first is tried again for 30 s while the guest
 *                                          refuses it (its listener not up yet)
 *   vsock_echo qmp PATH COMMAND...         host: send QMP commands (after the greeting) to QEMU's socket
 * Prints "vsock_echo: N ok" and exits 0 when every exchange matched; 1 on any error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static int die(const char *what) {
  fprintf(stderr, "vsock_echo: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void echo_loop(int l) {
  for (;;) {
    int c = accept(l, NULL, NULL);
    if (c < 0) die("accept");
    if (fork() == 0) {
      char buf[65536];
      ssize_t n;
      while ((n = read(c, buf, sizeof buf)) > 0)
        if (write(c, buf, (size_t)n) != n) die("write");
      _exit(0);
    }
    close(c);
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
  }
}

/* Sends `bytes` of a pattern on fd c (a writer child) and checks the echo. */
static int exchange(int c, long bytes, int seed) {
  pid_t w = fork();
  if (w == 0) {
    char buf[4096];
    long sent = 0;
    while (sent < bytes) {
      size_t k = bytes - sent < (long)sizeof buf ? (size_t)(bytes - sent) : sizeof buf;
      for (size_t i = 0; i < k; ++i) buf[i] = (char)((sent + (long)i) * 31 + seed);
      ssize_t n = write(c, buf, k);
      if (n <= 0) die("write");
      sent += n;
    }
    shutdown(c, SHUT_WR);
    _exit(0);
  }
  char buf[65536];
  long got = 0;
  ssize_t n = 0;
  while (got < bytes && (n = read(c, buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < n; ++i)
      if (buf[i] != (char)((got + i) * 31 + seed)) {
        fprintf(stderr, "vsock_echo: byte %ld differs\n", got + (long)i);
        return 1;
      }
    got += n;
  }
  int st = 0;
  waitpid(w, &st, 0);
  if (got != bytes) {
    fprintf(stderr, "vsock_echo: got %ld of %ld bytes back on connection %d%s\n", got, bytes, seed,
            n < 0 && errno == EAGAIN ? " (nothing came for 120 s)" : "");
    return 1;
  }
  return 0;
}

static int uds_socket(const char *path, int do_listen) {
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  if (s < 0) die("socket");
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  if (do_listen) {
    unlink(path);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(s, 128) < 0) die("listen");
  } else if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
    die("connect");
  }
  return s;
}

int main(int argc, char **argv) {
  if (argc >= 3 && (strcmp(argv[1], "listen") == 0 || strcmp(argv[1], "wait") == 0)) {
    int l = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (l < 0) die("socket(AF_VSOCK)");
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = (unsigned)atoi(argv[2])};
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(l, 128) < 0) die("listen");
    if (strcmp(argv[1], "wait") == 0) {
      int c = accept(l, NULL, NULL);
      if (c < 0) die("accept");
      return 0;
    }
    echo_loop(l);
  }
  if (argc >= 3 && strcmp(argv[1], "uds-listen") == 0) echo_loop(uds_socket(argv[2], 1));
  if (argc >= 6 && strcmp(argv[1], "connect") == 0) {
    int n = atoi(argv[4]);
    for (int i = 0; i < n; ++i) {
      int c = socket(AF_VSOCK, SOCK_STREAM, 0);
      if (c < 0) die("socket(AF_VSOCK)");
      struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = (unsigned)atoi(argv[2]), .svm_port = (unsigned)atoi(argv[3])};
      if (connect(c, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
      if (exchange(c, atol(argv[5]), i)) return 1;
      close(c);
    }
    printf("vsock_echo: %d ok\n", n);
    return 0;
  }
  if (argc >= 6 && strcmp(argv[1], "uds-connect") == 0) {
    int n = atoi(argv[4]);
    int retries = 0;
    for (int i = 0; i < n; ++i) {
      int c = uds_socket(argv[2], 0);
      /* A reply that never comes fails this connection after 120 s (named below)
       * instead of holding the whole suite until its watchdog. */
      struct timeval tv = {120, 0};
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      char line[64];
      int len = snprintf(line, sizeof line, "CONNECT %s\n", argv[3]);
      if (write(c, line, (size_t)len) != len) die("write CONNECT");
      /* The answer: "OK <port>\n", read byte by byte (data follows it). */
      size_t k = 0;
      while (k < sizeof line - 1 && read(c, line + k, 1) == 1 && line[k] != '\n') ++k;
      line[k] = 0;
      /* The guest's program may not listen yet (it says it is ready as it starts its
       * listener, or is about to call listen): the VMM closes the connection the guest
       * refused. Only the first connection is tried again, every 100 ms for 30 s. */
      if (i == 0 && line[0] == 0 && retries < 300) {
        close(c);
        ++retries;
        --i;
        usleep(100000);
        continue;
      }
      if (strncmp(line, "OK ", 3) != 0) {
        fprintf(stderr, "vsock_echo: CONNECT answered '%s'%s\n", line, i == 0 ? " (for 30 s)" : "");
        return 1;
      }
      if (i == 0 && retries > 0) fprintf(stderr, "vsock_echo: port %s listened after %d refused tries\n", argv[3], retries);
      if (exchange(c, atol(argv[5]), i)) return 1;
      close(c);
    }
    printf("vsock_echo: %d ok\n", n);
    return 0;
  }
  if (argc >= 4 && strcmp(argv[1], "qmp") == 0) {  /* the QEMU side of bench/overcommit_compare.sh */
    int c = uds_socket(argv[2], 0);
    FILE *in = fdopen(c, "r");
    char line[4096];
    if (!fgets(line, sizeof line, in)) die("read QMP greeting");
    for (int i = 3; i < argc; ++i) {
      if (write(c, argv[i], strlen(argv[i])) < 0 || write(c, "\n", 1) != 1) die("write QMP");
      do {
        if (!fgets(line, sizeof line, in)) die("read QMP");
      } while (!strstr(line, "\"return\"") && !strstr(line, "\"error\""));
      fputs(line, stdout);
      if (strstr(line, "\"error\"")) return 1;
    }
    return 0;
  }
  fprintf(stderr, "usage: vsock_echo listen PORT | wait PORT | connect CID PORT N BYTES | uds-listen PATH | "
                  "uds-connect PATH PORT N BYTES | qmp PATH COMMAND...\n");
  return 2;
}
