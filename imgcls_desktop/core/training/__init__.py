"""Training: the network builders, offline transfer learning, data iterators and the loop."""
