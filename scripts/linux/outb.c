/* outb PORT VALUE: write one byte to an I/O port, e.g. `outb 0xf4 3` ends our
 * VMM with status 3 through the debug-exit port.
 *
 * The small kernel has no /dev/port: CONFIG_DEVPORT needs PCI (or ISA, 32-bit
 * only), and PCI is off because the machine has none. ioperm() gives this
 * process the same access /dev/port would. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/io.h>

int main(int argc, char **argv) {
    char *end;
    unsigned long port, value;
    if (argc != 3) {
        fprintf(stderr, "usage: outb PORT VALUE\n");
        return 2;
    }
    port = strtoul(argv[1], &end, 0);
    if (*end || port > 0xffff) {
        fprintf(stderr, "outb: bad port %s\n", argv[1]);
        return 2;
    }
    value = strtoul(argv[2], &end, 0);
    if (*end || value > 0xff) {
        fprintf(stderr, "outb: bad value %s\n", argv[2]);
        return 2;
    }
    if (ioperm(port, 1, 1) != 0) {
        perror("outb: ioperm");
        return 1;
    }
    outb((unsigned char)value, (unsigned short)port);
    return 0;
}
