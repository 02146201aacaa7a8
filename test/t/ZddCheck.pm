# ZddCheck — shared checks for zdd's TAP tests.
package ZddCheck;
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Exporter 'import';
our @EXPORT = qw(server_logs_clean);

# Asserts that no node's server log shows a crash (a process ended by a
# signal other than the SIGKILLs the tests send themselves), an assertion
# failure or a memory-context warning of the debug build.
sub server_logs_clean
{
	my @nodes = @_;
	for my $node (@nodes)
	{
		my $log = slurp_file($node->logfile);
		my @bad = grep { !/terminated by signal 9: Killed/ }
		  ($log =~ /^.*(?:terminated by signal \d+|TRAP:|problem in alloc set|detected write past chunk|leaked (?:in|during)).*$/mg);
		is(scalar(@bad), 0, $node->name . ': server log shows no crash, assertion or memory warning')
		  or diag(join("\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]));
	}
}

1;
