"""Follow-up (跟踪回访) and continuing aid (续助, 直至完成学业): visits on a paid case, the close
they lead to, and a renewal case in a later campaign."""
