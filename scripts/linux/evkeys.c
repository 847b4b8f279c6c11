/* evkeys: print the key events Linux's input layer delivers for the AT keyboard.
 *
 * busybox has no evtest. This finds the /dev/input/event* device whose name
 * contains "AT Translated Set 2 keyboard" (atkbd on our i8042), prints
 *   evkeys: reading /dev/input/eventN (NAME)
 * then one line per EV_KEY event:
 *   evkey CODE VALUE        (CODE: linux/input-event-codes.h, VALUE 1 down, 0 up, 2 repeat)
 * and exits 0 after the Escape key is released (the test's last key), or 1 on
 * an error, with one line saying which. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/input.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int open_keyboard(char *path, size_t len, char *name, size_t name_len) {
    DIR *dir = opendir("/dev/input");
    struct dirent *entry;
    if (!dir) {
        perror("evkeys: /dev/input");
        return -1;
    }
    while ((entry = readdir(dir))) {
        if (strncmp(entry->d_name, "event", 5) != 0)
            continue;
        snprintf(path, len, "/dev/input/%s", entry->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        memset(name, 0, name_len);
        if (ioctl(fd, EVIOCGNAME(name_len - 1), name) >= 0 && strstr(name, "AT Translated Set 2 keyboard")) {
            closedir(dir);
            return fd;
        }
        close(fd);
    }
    closedir(dir);
    fprintf(stderr, "evkeys: no AT keyboard under /dev/input\n");
    return -1;
}

int main(void) {
    char path[300], name[128];
    struct input_event ev;
    int fd = open_keyboard(path, sizeof path, name, sizeof name);
    if (fd < 0)
        return 1;
    printf("evkeys: reading %s (%s)\n", path, name);
    fflush(stdout);
    for (;;) {
        ssize_t got = read(fd, &ev, sizeof ev);
        if (got != (ssize_t)sizeof ev) {
            perror("evkeys: read");
            return 1;
        }
        if (ev.type != EV_KEY)
            continue;
        printf("evkey %u %d\n", ev.code, ev.value);
        fflush(stdout);
        if (ev.code == KEY_ESC && ev.value == 0)
            return 0;
    }
}
