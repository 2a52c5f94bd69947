# Reference numbers for the Cox statistics core (models/cox.py, models/ph.py,
# validation/discrimination.py), from R survival 3.5 and riskRegression.
#
# Run from the repository root:   Rscript tests/reference/survival_reference.R
# Writes tests/reference/survival_<name>.json for each data set below (committed; CI never runs R).
#
# The study file is read here with the `yaml` package and the model is built with R factors and
# formulas, independently of the package's own design-matrix code.  Calls used (R 4.2):
#   coxph(Surv(t, e) ~ ..., ties = "efron", control = coxph.control(eps = 1e-12, iter.max = 100))
#   survfit(fit)                          Efron baseline (ctype = 2 for an Efron fit) at fit$means
#   predict(fit, type = "lp")             centred linear predictor
#   cox.zph(fit, transform = "km", terms = FALSE / TRUE)
#   concordance(fit)                      Harrell's C of the Cox fit, infinitesimal-jackknife var
#   riskRegression::Score(..., metrics = "auc", cens.model = "km")   IPCW cumulative/dynamic AUC
#   predict(fit, newdata = <follow-up truncated at the horizon>, type = "expected") = E, then
#   glm(o ~ 1 + offset(log(E)), poisson, subset = E > 0) and
#   glm(o ~ lp + offset(log(E) - lp), poisson, subset = E > 0)    calibration line (Crowson 2016)
# Data sets: the test studies tests/studies/{rossi,lung,gbsg2}/ (real public data, each with its
# study file), the synthetic fixture tests/reference/data/study_fixture.csv and the shipped
# synthetic cohort data/cohort.csv (both with study.yaml).  The functions are in survival_common.R.
source("tests/reference/survival_common.R")   # prepare(), model_reference(), run()

run("rossi", "tests/studies/rossi/study.yaml", "tests/studies/rossi/rossi.csv",
    extra = list(coarse = c("fin", "wexp")))
run("fixture", "study.yaml", "tests/reference/data/study_fixture.csv",
    extra = list(factor = c("fracture_level", "cement_viscosity", "ct_value_hu"),
                 coarse = c("cement_viscosity", "cortical_fracture")))
if (file.exists("data/cohort.csv")) {
  run("cohort", "study.yaml", "data/cohort.csv",
      extra = list(coarse = c("cement_viscosity", "cortical_fracture")))
}
# the other test studies (tests/studies/*/, read by tests/test_studies_reference.py as well)
run("lung", "tests/studies/lung/study.yaml", "tests/studies/lung/lung.csv")
run("gbsg2", "tests/studies/gbsg2/study.yaml", "tests/studies/gbsg2/gbsg2.csv")
