//! One stream entry: the content of one committed write group. (Being built: issue 16.)
