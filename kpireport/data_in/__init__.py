"""What goes into a workbook: the template, samples, ``prepare``, marked copies, ``import``."""
