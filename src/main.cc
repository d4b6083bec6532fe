#include "cli.h"

int main(int argc, char** argv) { return timevault::cli::Main(argc, argv); }
