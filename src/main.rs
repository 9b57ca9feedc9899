mod audio;
mod metadata;

fn main() {}
