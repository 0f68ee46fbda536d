//! Runs external programs from an argv array with a timeout, streaming
//! their output, and kills the whole process group on timeout.
