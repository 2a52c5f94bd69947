# Write lung.csv: R survival::lung (NCCTG advanced lung cancer) for the cementleak test study in
# this folder.  Run from the repository root:   Rscript tests/studies/lung/export_lung.R
# (R 4.2, survival 3.5).  Every change to R's data is listed in README.md in this folder:
#   - id: the row number in survival::lung (the study file needs an id column);
#   - inst (institution code) is left out;
#   - status 1 = censored / 2 = dead becomes 0 / 1 (the event column must be 0/1 today);
#   - column names with a dot (ph.ecog, ...) get an underscore (a study-file name cannot hold a dot).
# sex stays 1/2 (the study file maps it with aliases); missing values stay missing (empty cells).
suppressPackageStartupMessages(library(survival))
l <- survival::lung
out <- data.frame(
  id = seq_len(nrow(l)),
  time = l$time, status = l$status - 1L,
  age = l$age, sex = l$sex,
  ph_ecog = l$ph.ecog, ph_karno = l$ph.karno, pat_karno = l$pat.karno,
  meal_cal = l$meal.cal, wt_loss = l$wt.loss
)
stopifnot(all(out$status %in% 0:1), nrow(out) == 228)
write.csv(out, "tests/studies/lung/lung.csv", row.names = FALSE, na = "", quote = FALSE)
cat("wrote tests/studies/lung/lung.csv:", nrow(out), "patients,", sum(out$status), "deaths\n")
