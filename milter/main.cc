// compd-milter: wiring only (libmilter, listeners, signals); logic lives in core/.
int main() { return 0; }
