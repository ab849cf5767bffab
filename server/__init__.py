"""What every instrument shares: base device, I/O worker, links, CLI, embedded demo plant."""
