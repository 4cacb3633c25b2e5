"""Payment batches (发放批次): bank cards, the bank's 代发 file and its result, funds reconciled."""
